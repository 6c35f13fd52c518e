package display

import (
	"testing"
	"time"
)

func BenchmarkRenderCode128x64(b *testing.B) {
	s := Screen{View: ViewCode, Issuer: "GitHub", Label: "alice@example.com", Code: "492039",
		Remaining: 17 * time.Second, Period: 30 * time.Second, Index: 1, Count: 5, Time: TimeSynced, Link: LinkUp}
	size := Sizes["ssd1306-128x64"]
	b.ReportAllocs()
	for b.Loop() {
		Render(s, size)
	}
}

func benchmarkRenderQR(b *testing.B, panel string, n int) {
	s := Screen{View: ViewQR, Issuer: "Example", Label: "alice@example.com", URI: otpauthURI(n)}
	size := Sizes[panel]
	b.ReportAllocs()
	for b.Loop() {
		Render(s, size)
	}
}

func BenchmarkRenderQR250x122URI95(b *testing.B)  { benchmarkRenderQR(b, "epd-250x122", 95) }
func BenchmarkRenderQR250x122URI160(b *testing.B) { benchmarkRenderQR(b, "epd-250x122", 160) }
func BenchmarkRenderQR128x64URI95(b *testing.B)   { benchmarkRenderQR(b, "ssd1306-128x64", 95) }
