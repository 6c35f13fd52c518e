package hw

import (
	"fmt"
	"image"
	"testing"
	"time"

	"periph.io/x/devices/v3/ssd1306/image1bit"

	"github.com/totpbox/totpbox/display"
	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/sim/oled"
)

// codeViewFrame renders the appliance's real code view (display.Render)
// at second sec of a minute: a 30 s key, its code changing at each step,
// the countdown bar moving every second and the next code shown in the
// last 5 s of a step.
func codeViewFrame(r image.Rectangle, sec int) *image1bit.VerticalLSB {
	k := enroll.Key{Issuer: "Example", Account: "alice", Secret: []byte("12345678901234567890"), Digits: 6, Period: 30 * time.Second}
	at := time.Unix(1_700_000_010, 0).Add(time.Duration(sec) * time.Second) // a step boundary
	step := enroll.Step(k, at)
	left := enroll.StepStart(k, step+1).Sub(at)
	scr := display.Screen{
		View: display.ViewCode, Issuer: "Example", Label: "alice",
		Code: enroll.CodeAt(k, step), Remaining: left, Period: k.Period,
		Index: 0, Count: 3, Time: display.TimeSynced, Link: display.LinkUp,
	}
	if left <= 5*time.Second {
		scr.NextCode = enroll.CodeAt(k, step+1)
	}
	return display.Render(scr, r.Size())
}

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
