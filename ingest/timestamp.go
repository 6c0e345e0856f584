package ingest

import "time"

// parseTime reads an ISO 8601 date-time in the forms that tracking SDKs
// send:
//
//	2026-01-02T15:04:05.000Z           analytics.js, analytics-next, RudderStack JS
//	2026-01-02T15:04:05.123456789+01:00 Go's time.Time (RFC 3339 with nanoseconds)
//	2026-01-02T15:04:05+00:00          PHP's date('c'), Ruby's iso8601
//	2026-01-02T15:04:05.123456         Python's isoformat() of a naive datetime (read as UTC)
//	2026-01-02 15:04:05+0100           a space for T, an offset without colon
//	2026-01-02                         a date alone (midnight UTC)
//
// Month and day may have one digit (2015-2-02, as in Segment's own batch
// example), seconds and the fraction are optional, the fraction may have
// any number of digits (nanoseconds are kept), and a missing zone means
// UTC. Years before 1970 are refused: no tracked event is that old, and a
// time that far back is a client bug.
func parseTime(s string) (time.Time, bool) {
	p := timeParser{s: s, ok: true}
	year := p.digits(4, 4)
	month := p.sepDigits('-', 1, 2)
	day := p.sepDigits('-', 1, 2)
	if !p.ok || year < 1970 || month < 1 || month > 12 || day < 1 || day > daysIn(month, year) {
		return time.Time{}, false
	}
	var hour, minute, sec, nsec int
	if p.i < len(s) && (s[p.i] == 'T' || s[p.i] == 't' || s[p.i] == ' ') {
		p.i++
		hour = p.digits(2, 2)
		minute = p.sepDigits(':', 2, 2)
		if p.i < len(s) && s[p.i] == ':' {
			sec = p.sepDigits(':', 2, 2)
			if p.i < len(s) && (s[p.i] == '.' || s[p.i] == ',') {
				p.i++
				nsec = p.fraction()
			}
		}
		if !p.ok || hour > 23 || minute > 59 || sec > 60 {
			return time.Time{}, false
		}
	}
	loc := time.UTC
	if p.i < len(s) {
		switch c := s[p.i]; c {
		case 'Z', 'z':
			p.i++
		case '+', '-':
			p.i++
			oh := p.digits(2, 2)
			om := 0
			if p.i < len(s) {
				if s[p.i] == ':' {
					p.i++
				}
				om = p.digits(2, 2)
			}
			if !p.ok || oh > 23 || om > 59 {
				return time.Time{}, false
			}
			off := oh*3600 + om*60
			if c == '-' {
				off = -off
			}
			loc = time.FixedZone("", off)
		default:
			return time.Time{}, false
		}
	}
	if !p.ok || p.i != len(s) {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, nsec, loc).UTC(), true
}

// timeParser reads digits from s; any failure clears ok.
type timeParser struct {
	s  string
	i  int
	ok bool
}

// digits reads between min and max decimal digits.
func (p *timeParser) digits(min, max int) int {
	n, start := 0, p.i
	for p.i < len(p.s) && p.i-start < max && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		n = n*10 + int(p.s[p.i]-'0')
		p.i++
	}
	if p.i-start < min {
		p.ok = false
	}
	return n
}

// sepDigits reads the separator sep and then digits.
func (p *timeParser) sepDigits(sep byte, min, max int) int {
	if p.i >= len(p.s) || p.s[p.i] != sep {
		p.ok = false
		return 0
	}
	p.i++
	return p.digits(min, max)
}

// fraction reads one or more digits as a fraction of a second, in
// nanoseconds; digits past the ninth are read and dropped.
func (p *timeParser) fraction() int {
	n, scale, start := 0, 100_000_000, p.i
	for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
		n += int(p.s[p.i]-'0') * scale
		scale /= 10
		p.i++
	}
	if p.i == start {
		p.ok = false
	}
	return n
}

// daysIn returns the number of days of a month.
func daysIn(month, year int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
