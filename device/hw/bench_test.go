package hw

import (
	"fmt"
	"image"
	"image/draw"
	"testing"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
	"periph.io/x/devices/v3/ssd1306/image1bit"

	"github.com/totpbox/totpbox/sim/oled"
)

// codeViewFrame draws a frame shaped like the appliance's code view at
// second sec of a minute: a label, six digits scaled up 3x that change at
// each 30 s step, a countdown bar along the bottom that shrinks every
// second, and during the last 5 s of a step a preview of the next code.
func codeViewFrame(r image.Rectangle, sec int) *image1bit.VerticalLSB {
	img := image1bit.NewVerticalLSB(r)
	text := func(dst draw.Image, s string, x, y int) {
		d := font.Drawer{Dst: dst, Src: image.NewUniform(image1bit.On), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
		d.DrawString(s)
	}
	step := sec / 30
	left := 30 - sec%30
	text(img, "Example: alice", 0, 11)

	code := fmt.Sprintf("%03d %03d", (step*7919+123)%1000, (step*104729+456)%1000)
	small := image1bit.NewVerticalLSB(image.Rect(0, 0, 7*len(code), 13))
	text(small, code, 0, 10)
	const scale = 2
	for y := range 13 * scale {
		for x := range small.Rect.Dx() * scale {
			img.SetBit(x+8, y+16, small.BitAt(x/scale, y/scale))
		}
	}
	if left <= 5 {
		next := fmt.Sprintf("next %03d %03d", ((step+1)*7919+123)%1000, ((step+1)*104729+456)%1000)
		text(img, next, 0, r.Max.Y-7)
	}
	bar := r.Dx() * left / 30
	for y := r.Max.Y - 4; y < r.Max.Y; y++ {
		for x := range bar {
			img.SetBit(x, y, image1bit.On)
		}
	}
	return img
}

// BenchmarkSPIBytesPerMinute measures the bytes a minute of the code view,
// redrawn once a second, puts on the emulated SPI bus through the product's
// path (OpenPanel, periph's ssd1306 driver, the emulator):
//
//   - partial: Draw, the driver sending only the rectangle that changed;
//   - refresh: Refresh every second, the controller initialised again and
//     every page sent;
//   - unchanged: Draw of the same frame, which must send nothing.
func BenchmarkSPIBytesPerMinute(b *testing.B) {
	for _, size := range []image.Point{{128, 64}, {128, 32}} {
		frames := make([]*image1bit.VerticalLSB, 60)
		for sec := range frames {
			frames[sec] = codeViewFrame(image.Rect(0, 0, size.X, size.Y), sec)
		}
		for _, mode := range []string{"partial", "refresh", "unchanged"} {
			b.Run(fmt.Sprintf("%dx%d/%s", size.X, size.Y, mode), func(b *testing.B) {
				d, cfg := simSSD1306(b, size.X, size.Y, 0)
				p, err := OpenPanel(cfg)
				if err != nil {
					b.Fatal(err)
				}
				defer p.Close()
				if err := p.Draw(frames[59]); err != nil {
					b.Fatal(err)
				}
				var per oled.Stats
				b.ResetTimer()
				for b.Loop() {
					before := d.Stats()
					for sec := range frames {
						var err error
						switch mode {
						case "partial":
							err = p.Draw(frames[sec])
						case "refresh":
							err = p.Refresh(frames[sec])
						case "unchanged":
							err = p.Draw(frames[59])
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					per = d.Stats().Sub(before)
				}
				if mode == "unchanged" && per.Bytes != 0 {
					b.Fatalf("an unchanged frame sent %d bytes a minute, want 0", per.Bytes)
				}
				b.ReportMetric(float64(per.Bytes), "bytes/min")
				b.ReportMetric(float64(per.DataBytes), "data-bytes/min")
				b.ReportMetric(float64(per.Transactions), "transfers/min")
			})
		}
	}
}

// TestCodeViewFrameChangesEverySecond keeps the benchmark honest: its frames
// differ from one second to the next, the code changes at the step.
func TestCodeViewFrameChangesEverySecond(t *testing.T) {
	r := image.Rect(0, 0, 128, 64)
	for sec := 1; sec < 60; sec++ {
		a, b := codeViewFrame(r, sec-1), codeViewFrame(r, sec)
		if changed(a, b).Empty() {
			t.Errorf("frames at %d s and %d s are equal", sec-1, sec)
		}
	}
}
