package testkit

import (
	"slices"
	"testing"
	"time"
)

// ReportLatency sorts lat and reports its median and 99th percentile as
// the benchmark metrics p50-ms and p99-ms (nearest rank on the sorted
// list). It reports nothing for an empty list.
func ReportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)]) / 1e6 }
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
