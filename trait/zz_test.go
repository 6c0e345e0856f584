package trait
import ("testing"; "encoding/json"; "bytes")
func BenchmarkZIndex(b *testing.B) {
	raw := benchEvent()
	b.ReportAllocs()
	for b.Loop() {
		e := NewEvent(raw)
		e.index()
	}
}
func BenchmarkZValue(b *testing.B) {
	raw := benchEvent()
	segs := []string{"properties", "total"}
	b.ReportAllocs()
	for b.Loop() {
		e := NewEvent(raw)
		e.value("properties.total", segs)
	}
}
func BenchmarkZValid(b *testing.B) {
	raw := benchEvent()
	for b.Loop() {
		json.Valid(raw.Raw)
	}
}
func BenchmarkZIndexByte(b *testing.B) {
	raw := benchEvent()
	for b.Loop() {
		bytes.IndexByte(raw.Raw, 0)
	}
}
