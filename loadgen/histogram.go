package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// The latency histogram is log-linear, like HdrHistogram: values in
// microseconds are counted exactly below 2^(subBits+1) µs, and above that
// each power of two is split into 2^subBits equal buckets, so a percentile
// read from it is at most 1/128 (0.8%) above the true value. Its size is
// fixed (30 KB) however long the run, and goroutines record into it with
// atomic adds, without a lock.
const (
	subBits  = 7
	subCount = 1 << subBits
	maxBits  = 36 // values are capped at 2^36 µs, about 19 hours
	nBuckets = (maxBits - subBits + 1) * subCount
)

type histogram struct {
	counts [nBuckets]atomic.Uint64
	max    atomic.Uint64 // µs
}

// bucketOf returns the bucket counting v µs.
func bucketOf(v uint64) int {
	v = min(v, 1<<maxBits-1)
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - 1 - subBits // v>>shift is in [subCount, 2*subCount)
	return (shift+1)*subCount + int(v>>shift) - subCount
}

// highest returns the largest value bucket i counts.
func highest(i int) uint64 {
	g := i >> subBits
	if g == 0 {
		return uint64(i)
	}
	shift := g - 1
	low := uint64(i&(subCount-1)+subCount) << shift
	return low + 1<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	v := uint64(max(d.Microseconds(), 0))
	h.counts[bucketOf(v)].Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Percentiles of request latency in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// percentiles reads nearest-rank percentiles: the smallest recorded value
// (as its bucket's upper bound, never above the maximum) that at least
// q·n of the values do not exceed.
func (h *histogram) percentiles() Percentiles {
	var counts [nBuckets]uint64
	var n uint64
	for i := range counts {
		counts[i] = h.counts[i].Load()
		n += counts[i]
	}
	if n == 0 {
		return Percentiles{}
	}
	maxV := h.max.Load()
	at := func(q float64) float64 {
		rank := max(uint64(math.Ceil(q*float64(n))), 1)
		var cum uint64
		for i, c := range counts {
			if cum += c; cum >= rank {
				return ms(min(highest(i), maxV))
			}
		}
		return ms(maxV)
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), P999: at(0.999), Max: ms(maxV)}
}

func ms(us uint64) float64 { return float64(us) / 1000 }
