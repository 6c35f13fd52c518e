package display

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkRenderCode renders the code view, the frame the appliance
// redraws every second; target ≤ 1 ms at 128x64.
func BenchmarkRenderCode(b *testing.B) {
	s := Screen{View: ViewCode, Issuer: "GitHub", Label: "alice@example.com", Code: "492039",
		Remaining: 17 * time.Second, Period: 30 * time.Second, Index: 1, Count: 5, Time: TimeSynced, Link: LinkUp}
	for _, panel := range SizeNames() {
		b.Run(panel, func(b *testing.B) {
			size := Sizes[panel]
			Render(s, size) // the faces' first use rasterises their glyphs
			b.ReportAllocs()
			for b.Loop() {
				Render(s, size)
			}
		})
	}
}

// BenchmarkRenderQR renders the QR view; target ≤ 5 ms. "cold" encodes the
// URI every time (each frame shows another URI); "warm" redraws the same
// URI, as the appliance does while the view is shown.
func BenchmarkRenderQR(b *testing.B) {
	for _, panel := range []string{"ssd1306-128x64", "epd-250x122", "epd-296x128"} {
		for _, n := range []int{95, 160} {
			uris := [2]string{otpauthURI(n), otpauthURI(n)[:n-1] + "Q"}
			for _, warm := range []bool{false, true} {
				name := fmt.Sprintf("%s/uri%d/cold", panel, n)
				if warm {
					name = fmt.Sprintf("%s/uri%d/warm", panel, n)
				}
				b.Run(name, func(b *testing.B) {
					size := Sizes[panel]
					s := Screen{View: ViewQR, Issuer: "Example", Label: "alice@example.com"}
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						s.URI = uris[0]
						if !warm {
							s.URI = uris[i&1]
						}
						Render(s, size)
						i++
					}
				})
			}
		}
	}
}

// BenchmarkFitQR sizes a QR code without encoding it.
func BenchmarkFitQR(b *testing.B) {
	uri, size := otpauthURI(160), Sizes["epd-250x122"]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FitQR(uri, size); err != nil {
			b.Fatal(err)
		}
	}
}
