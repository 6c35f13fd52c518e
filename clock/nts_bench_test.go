package clock

import (
	"context"
	"log/slog"
	"math"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLoopbackNTSBesidePlain polls one chronyd over loopback, plain
// NTP and NTS on the same path, one sample a round once SYNCED, and
// reports the reading's RMS and largest error against the host clock that
// chronyd serves, and the process's CPU per sample (query, NTS fields and
// AEAD, discipline).
//
//	go test -run '^$' -bench LoopbackNTSBesidePlain -benchtime 400x ./clock/
func BenchmarkLoopbackNTSBesidePlain(b *testing.B) {
	ca := newTestCA(b)
	srv, ntpAddr := startChronyNTS(b, ca)
	for _, mode := range []struct{ name, server string }{{"plain", ntpAddr}, {"nts", srv}} {
		b.Run(mode.name, func(b *testing.B) {
			r := newRig(b, Config{Servers: []string{mode.server}}, EngineConfig{NTS: NTSEnv{Roots: ca.pool}})
			if rd := r.rounds(40, synced); rd.State != Synced {
				b.Fatalf("not SYNCED: %+v", r.eng.Status())
			}
			r.rounds(20, nil) // the quick rounds: the frequency settles
			var sum2, worst float64
			n := 0
			cpu := cpuTime(b)
			b.ResetTimer()
			for b.Loop() {
				r.eng.Round(context.Background())
				before := time.Now()
				rd := r.eng.Reading()
				after := time.Now()
				mid := before.Add(after.Sub(before) / 2)
				e := rd.Time.Sub(mid).Seconds()
				sum2 += e * e
				worst = max(worst, math.Abs(e))
				n++
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime(b)-cpu)/float64(n)/1e3, "cpu-µs/sample")
			b.ReportMetric(math.Sqrt(sum2/float64(n))*1e6, "rms-µs")
			b.ReportMetric(worst*1e6, "max-µs")
			if s := r.eng.Status().Servers[0]; s.Failures != 0 || mode.name == "nts" && !s.Authenticated {
				b.Fatalf("server %+v: failures, or not authenticated", s)
			}
		})
	}
}

// BenchmarkNTSFirstTrusted starts the clock's Service, as the daemon does,
// and reports the wall time to the first trusted reading (the first code
// on the screen): key exchange, a burst of 4 queries 250 ms apart, the
// discipline's first update.
//
//	go test -run '^$' -bench NTSFirstTrusted -benchtime 5x ./clock/
func BenchmarkNTSFirstTrusted(b *testing.B) {
	ca := newTestCA(b)
	srv, ntpAddr := startChronyNTS(b, ca)
	for _, mode := range []struct{ name, server string }{{"plain", ntpAddr}, {"nts", srv}} {
		b.Run(mode.name, func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				start := time.Now()
				svc, err := New(Config{Servers: []string{mode.server}, NTSCAFile: ca.file}, Env{Logger: slog.New(slog.DiscardHandler)})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { svc.Run(ctx); close(done) }()
				for !svc.Now().State.Trusted() {
					if time.Since(start) > 20*time.Second {
						b.Fatalf("not trusted after 20 s: %+v", svc.Status())
					}
					time.Sleep(time.Millisecond)
				}
				total += time.Since(start)
				cancel()
				<-done
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-trusted")
		})
	}
}
