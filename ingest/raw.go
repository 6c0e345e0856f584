package ingest

import "encoding/json"

// raw returns a copy of the event elem as it goes into the log: with the
// batch's context, integrations and sentAt merged in, without writeKey,
// and, for a single call, with a type. An event that could not be scanned
// (or has a duplicated member) is copied as it is.
func (d *decoder) raw(elem []byte, ev *scannedEvent) json.RawMessage {
	start := len(d.arena)
	if ev.b == nil || ev.dup >= 0 {
		d.arena = append(d.arena, elem...)
		return d.arena[start:len(d.arena):len(d.arena)]
	}
	b := ev.b
	var (
		edits  [5]edit // at most one per member: writeKey, type, context, integrations, sentAt
		nedits int
		adds   [4]addition
		nadds  int
	)
	remaining := ev.n
	if m := ev.f[fWriteKey]; m.valEnd != 0 {
		remaining--
		switch {
		case m.comma >= 0:
			edits[nedits] = edit{start: m.comma, end: m.valEnd}
		case ev.second > 0:
			edits[nedits] = edit{start: m.keyStart, end: ev.second}
		default:
			edits[nedits] = edit{start: m.keyStart, end: m.valEnd}
		}
		nedits++
	}
	if d.in.Call != CallBatch {
		if m := ev.f[fType]; m.valEnd == 0 {
			adds[nadds] = addition{fType, quote(d.in.Call)}
			nadds++
		} else if b[m.valStart] == 'n' {
			edits[nedits] = edit{start: m.valStart, end: m.valEnd, value: quote(d.in.Call)}
			nedits++
		}
	}
	for _, o := range [...]struct {
		f   field
		obj *batchObject
	}{{fContext, &d.top.ctx}, {fIntegrations, &d.top.integ}} {
		if o.obj.raw == nil {
			continue
		}
		m := ev.f[o.f]
		switch {
		case m.valEnd == 0:
			adds[nadds] = addition{o.f, o.obj.raw}
			nadds++
		case b[m.valStart] == 'n':
			edits[nedits] = edit{start: m.valStart, end: m.valEnd, value: o.obj.raw}
			nedits++
		case b[m.valStart] == '{':
			if lastEnd, n, any := o.obj.plan(b[m.valStart:m.valEnd]); any {
				edits[nedits] = edit{start: m.valStart, end: m.valEnd, merge: o.obj, lastEnd: lastEnd, n: n}
				nedits++
			}
		}
	}
	if d.top.sentAtRaw != nil {
		if m := ev.f[fSentAt]; m.valEnd == 0 {
			adds[nadds] = addition{fSentAt, d.top.sentAtRaw}
			nadds++
		} else if b[m.valStart] == 'n' {
			edits[nedits] = edit{start: m.valStart, end: m.valEnd, value: d.top.sentAtRaw}
			nedits++
		}
	}
	if nedits == 0 && nadds == 0 {
		d.arena = append(d.arena, b...)
		return d.arena[start:len(d.arena):len(d.arena)]
	}
	// Apply the edits in order of position; all lie before ev.last, where
	// the additions go.
	es := edits[:nedits]
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].start < es[j-1].start; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
	out, pos := d.arena, 0
	for _, e := range es {
		out = append(out, b[pos:e.start]...)
		switch {
		case e.merge != nil:
			out = e.merge.writeMerged(out, b[e.start:e.end], e.lastEnd, e.n)
		default:
			out = append(out, e.value...)
		}
		pos = e.end
	}
	out = append(out, b[pos:ev.last]...)
	for _, a := range adds[:nadds] {
		if remaining > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, fieldNames[a.f]...)
		out = append(out, '"', ':')
		out = append(out, a.value...)
		remaining++
	}
	out = append(out, b[ev.last:]...)
	d.arena = out
	return out[start:len(out):len(out)]
}

// edit replaces b[start:end] of an event: with value, with the merge of a
// batch-level object into it, or with nothing.
type edit struct {
	start, end int
	value      []byte
	merge      *batchObject
	lastEnd, n int // for merge: see batchObject.plan
}

// addition is a member appended to an event.
type addition struct {
	f     field
	value []byte
}
