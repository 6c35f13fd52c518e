package syslog

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/totpbox/totpbox/enroll/server/events/syslog/syslogtest"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/internal/testkit"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var t0 = time.Date(2026, 12, 7, 3, 0, 0, 123456000, time.UTC)

// TestFormatGolden pins the wire format: RFC 5424 messages with their
// structured data, and the octet-counting frame.
func TestFormatGolden(t *testing.T) {
	h := Header{Hostname: "auth1.example", ProcID: "4242"}
	for _, tc := range []struct {
		name string
		e    store.AuditEvent
	}{
		{"register", store.AuditEvent{Time: t0, Actor: "alice", Action: "device.register", Target: "user:bob device:3", Detail: `registered "Phone"`, IP: "192.0.2.10"}},
		{"verify_fail", store.AuditEvent{Time: t0, Actor: "token:vpn", Action: "verify.fail", Target: "user:bob", Detail: "code invalid", IP: "2001:db8::1"}},
		{"lock", store.AuditEvent{Time: t0, Actor: "system", Action: "device.lock", Target: "user:bob device:3"}},
		{"escapes", store.AuditEvent{Time: t0, Actor: `ev"il\]`, Action: "radius.reject", Target: "user:é]", Detail: "line one\nline two\r\x00"}},
		{"long_msgid", store.AuditEvent{Time: t0, Actor: "cli", Action: "a.very.long.action.name.that.goes.past.thirty.two", Target: ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := frame(Format(h, tc.e))
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("frame(Format(%+v)) =\n%q\nwant\n%q", tc.e, got, want)
			}
			if bytes.ContainsAny(got, "\n\r\x00") {
				t.Errorf("message holds a control character: %q", got)
			}
		})
	}
}

// TestPublishNeverBlocks fills the queue of a writer whose collector is
// down: Publish returns at once, the overflow is counted, and the count
// is logged once a minute.
func TestPublishNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs syncBuffer
		w, err := New(Config{Address: "127.0.0.1:1", Transport: TransportTCP, Queue: 3,
			Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go w.logDrops(ctx)
		for i := range 10 {
			w.Publish(store.AuditEvent{Time: t0, Action: fmt.Sprint("e", i)})
		}
		if w.Dropped() != 7 {
			t.Errorf("Dropped() = %d, want 7 (10 events, queue of 3)", w.Dropped())
		}
		time.Sleep(59 * time.Second)
		synctest.Wait()
		if strings.Contains(logs.String(), "dropped") {
			t.Errorf("drops logged before a minute passed: %s", logs.String())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if !strings.Contains(logs.String(), "dropped=7") {
			t.Errorf("after a minute the log says %q, want dropped=7", logs.String())
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := strings.Count(logs.String(), "dropped="); n != 1 {
			t.Errorf("drops logged %d times after a minute without new drops, want once", n)
		}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Address: "siem:6514", Transport: "tls+tcp"}, `audit.syslog.transport must be tls, tcp or udp, not "tls+tcp"`},
		{Config{Address: "siem", Transport: "tls"}, `audit.syslog.address must be host:port, not "siem"`},
	} {
		if _, err := New(tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("New(%+v) = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestRsyslog sends events over TLS to rsyslog: each arrives as RFC 5424
// with its structured data. rsyslog is then stopped for a while and
// started again: the events published meanwhile arrive or were counted
// as dropped, and Publish never blocked.
func TestRsyslog(t *testing.T) {
	r := syslogtest.Start(t)
	w, err := New(Config{Address: r.Addr, Transport: TransportTLS, TLS: r.TLS, Queue: 20,
		Header: Header{Hostname: "totp1"}, MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, func(ctx context.Context) error { w.Run(ctx); return nil })

	ev := func(i int) store.AuditEvent {
		return store.AuditEvent{Time: t0, Actor: "alice", Action: "device.register", Target: fmt.Sprintf("user:u%d device:%d", i, i), IP: "192.0.2.1", Detail: "d"}
	}
	for i := range 5 {
		w.Publish(ev(i))
	}
	testkit.WaitFor(t, 10*time.Second, "5 messages at rsyslog", func() bool { return len(r.Lines()) >= 5 })
	for i, l := range r.Lines() {
		want := fmt.Sprintf(`1 2026-12-07T03:00:00.123456+00:00 totp1 totpserver - device.register [totpbox@32473 event="device.register" actor="alice" target="user:u%d device:%d" address="192.0.2.1" result="success"] d`, i, i)
		if !strings.HasSuffix(l, want[len("1 2026-12-07T03:00:00.123456+00:00"):]) || !strings.HasPrefix(l, "<85>1 ") {
			t.Errorf("rsyslog line %d = %q, want <85>%s", i, l, want)
		}
	}

	r.Stop()
	testkit.WaitFor(t, 5*time.Second, "the writer to notice the collector is gone", func() bool {
		return !w.connected.Load()
	})
	// 50 events while the collector is down: 20 fit the queue (one may
	// be in flight), the rest are dropped; none of it blocks.
	start := time.Now()
	for i := 5; i < 55; i++ {
		w.Publish(ev(i))
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("50 Publish calls with the collector down took %v", d)
	}
	dropped := w.Dropped()
	if dropped < 29 || dropped > 30 {
		t.Errorf("Dropped() = %d, want 30 (or 29 with one in flight)", dropped)
	}
	r.Start()
	testkit.WaitFor(t, 10*time.Second, "the queued events at rsyslog", func() bool {
		return uint64(len(r.Lines())) >= 55-dropped
	})
	got := map[string]int{}
	for _, l := range r.Lines() {
		i := strings.Index(l, `target="`)
		got[l[i:strings.Index(l[i+8:], `"`)+i+8]]++
	}
	for i := range 55 - int(dropped) {
		if got[fmt.Sprintf(`target="user:u%d device:%d`, i, i)] == 0 {
			t.Errorf("event %d never arrived at rsyslog", i)
		}
	}
	if w.Sent() < 55-dropped {
		t.Errorf("Sent() = %d, want at least %d", w.Sent(), 55-dropped)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
