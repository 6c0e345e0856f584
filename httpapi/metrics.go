package httpapi

import (
	"time"

	"github.com/kithcdp/kith/store"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the Prometheus collectors of the HTTP layer and the log.
type metrics struct {
	received    *prometheus.CounterVec // events in requests that authenticated, by source
	accepted    *prometheus.CounterVec // events newly stored
	duplicates  *prometheus.CounterVec // events answered from messageId dedup
	quarantined *prometheus.CounterVec // events quarantined, by reason
	rejected    *prometheus.CounterVec // requests refused whole, by reason
	latency     *prometheus.HistogramVec
}

func newMetrics(reg *prometheus.Registry, st store.Store) *metrics {
	m := &metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_events_received_total",
			Help: "Events received in authenticated Tracking API requests.",
		}, []string{"workspace", "source"}),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_events_accepted_total",
			Help: "Events newly appended to the log.",
		}, []string{"workspace", "source"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_events_duplicate_total",
			Help: "Events not stored again because their messageId was already in the log.",
		}, []string{"workspace", "source"}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_events_quarantined_total",
			Help: "Events of a batch that failed validation and were quarantined.",
		}, []string{"workspace", "source", "reason"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kith_requests_rejected_total",
			Help: "Tracking API requests refused whole, by reason code.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kith_http_request_duration_seconds",
			Help:    "HTTP request latency by route and status class.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route", "code"}),
	}
	reg.MustRegister(m.received, m.accepted, m.duplicates, m.quarantined, m.rejected, m.latency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if st != nil {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "kith_store_fsyncs_total",
			Help: "Write transactions committed by the store; each is fsynced before it returns.",
		}, func() float64 { return float64(st.Stats().Commits) }))
	}
	return m
}

// CommitObserver registers histograms of the log's group commits (latency
// and batch size) and returns the function to pass as
// store.GroupCommitOptions.OnCommit.
func CommitObserver(reg *prometheus.Registry) func(events int, d time.Duration) {
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kith_log_commit_duration_seconds",
		Help:    "Latency of one group commit of the event log, fsync included.",
		Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1},
	})
	size := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kith_log_commit_events",
		Help:    "Events and quarantined entries written by one group commit.",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8),
	})
	reg.MustRegister(latency, size)
	return func(events int, d time.Duration) {
		latency.Observe(d.Seconds())
		size.Observe(float64(events))
	}
}

// RegisterDurability publishes the store's durability settings as an info
// metric (value 1) so that operators can alert on them.
func RegisterDurability(reg *prometheus.Registry, d store.Durability) {
	labels := prometheus.Labels{"backend": d.Backend}
	for k, v := range d.Settings {
		labels[k] = v
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "kith_store_durability_info",
		Help:        "Durability settings asserted at start-up (value is always 1).",
		ConstLabels: labels,
	})
	g.Set(1)
	reg.MustRegister(g)
}
