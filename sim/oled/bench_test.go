package oled

import (
	"fmt"
	"image"
	"io"
	"testing"

	"periph.io/x/devices/v3/ssd1306"
)

// BenchmarkReadBack measures what the simulator pays per frame it serves:
// reading the glass back from GDDRAM, and encoding it as PNG.
func BenchmarkReadBack(b *testing.B) {
	d, dev := newDriven(b, 128, 64, ssd1306.DefaultOpts)
	if err := dev.Draw(dev.Bounds(), pattern(dev.Bounds(), 1), image.Point{}); err != nil {
		b.Fatal(err)
	}
	b.Run("Frame", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = d.Frame()
		}
	})
	for _, scale := range []int{1, 4} {
		b.Run(fmt.Sprintf("PNG/scale=%d", scale), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := d.PNG(io.Discard, scale); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFullFrameOverSPI measures the emulator decoding a full frame sent
// by periph's driver: 8 pages of 3 command and 128 data bytes.
func BenchmarkFullFrameOverSPI(b *testing.B) {
	d, dev := newDriven(b, 128, 64, ssd1306.DefaultOpts)
	frames := [2]image.Image{pattern(dev.Bounds(), 1), pattern(dev.Bounds(), 2)}
	b.ReportAllocs()
	before := d.Stats()
	i := 0
	for b.Loop() {
		if err := dev.Draw(dev.Bounds(), frames[i%2], image.Point{}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	s := d.Stats().Sub(before)
	b.ReportMetric(float64(s.Bytes)/float64(i), "bytes/frame")
}
