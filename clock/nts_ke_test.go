package clock

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// keRecord encodes one NTS-KE record.
func keRecord(typ uint16, body ...uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(2*len(body)))
	for _, v := range body {
		b = binary.BigEndian.AppendUint16(b, v)
	}
	return b
}

func keCookie(n int) []byte {
	b := binary.BigEndian.AppendUint16(nil, 5)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	return append(b, make([]byte, n)...)
}

// fakeKE is a key exchange server that answers every request with reply
// over TLS with cert; it returns "nts://127.0.0.1:port".
func fakeKE(t *testing.T, cert tls.Certificate, reply []byte) string {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"ntske/1"},
		MinVersion:   tls.VersionTLS13,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				r := bufio.NewReader(c)
				for { // the request, up to End of Message
					var hdr [4]byte
					if _, err := io.ReadFull(r, hdr[:]); err != nil {
						return
					}
					if _, err := r.Discard(int(binary.BigEndian.Uint16(hdr[2:]))); err != nil {
						return
					}
					if binary.BigEndian.Uint16(hdr[:])&0x7fff == 0 {
						break
					}
				}
				c.Write(reply)
			}()
		}
	}()
	return fmt.Sprintf("nts://127.0.0.1:%d", l.Addr().(*net.TCPAddr).Port)
}

// TestNTSKEBadInput: a key exchange that cannot be trusted or used gives
// one line naming what was wrong, and no sample is taken.
func TestNTSKEBadInput(t *testing.T) {
	ca := newTestCA(t)
	now := time.Now()
	good, _, _ := ca.issue(t, "127.0.0.1", now.Add(-time.Hour), now.Add(time.Hour))
	otherName, _, _ := ca.issue(t, "time.example.org", now.Add(-time.Hour), now.Add(time.Hour))
	expired, _, _ := ca.issue(t, "127.0.0.1", now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	var full []byte
	full = append(full, keRecord(0x8001, 0)...)
	full = append(full, keRecord(4, 15)...)
	full = append(full, keCookie(100)...)
	full = append(full, keRecord(0x8000)...)
	noCookies := append(append(keRecord(0x8001, 0), keRecord(4, 15)...), keRecord(0x8000)...)
	otherAEAD := append(append(append(keRecord(0x8001, 0), keRecord(4, 30)...), keCookie(100)...), keRecord(0x8000)...)
	for _, tc := range []struct {
		name  string
		cert  tls.Certificate
		reply []byte
		want  string
	}{
		{"certificate for another name", otherName, full, "cannot validate certificate for 127.0.0.1"},
		{"expired certificate", expired, full, "certificate has expired"},
		{"no cookies", good, noCookies, "reply carries no cookies"},
		{"unknown AEAD", good, otherAEAD, "server chose AEAD algorithm 001e, want 15 (AEAD_AES_SIV_CMAC_256)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := fakeKE(t, tc.cert, tc.reply)
			r := newRig(t, Config{Servers: []string{srv}}, EngineConfig{NTS: NTSEnv{Roots: ca.pool}})
			r.rounds(1, nil)
			s := r.eng.Status().Servers[0]
			if !strings.Contains(s.Error, tc.want) || strings.Contains(s.Error, "\n") {
				t.Errorf("error %q, want one line saying %q", s.Error, tc.want)
			}
			if s.KEFailures != 1 || s.Authenticated || r.eng.disc.Samples() != 0 {
				t.Errorf("status %+v, %d samples; want one failed key exchange and no sample", s, r.eng.disc.Samples())
			}
		})
	}
}

// TestRequireAuthenticated: with an nts:// server, plain NTP servers are
// not polled unless clock.require_authenticated is false, and the status
// says why.
func TestRequireAuthenticated(t *testing.T) {
	for _, tc := range []struct {
		name    string
		require *bool
		ignored bool
	}{
		{"default with nts", nil, true},
		{"required", new(true), true},
		{"not required", new(false), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Servers: []string{"nts://127.0.0.1:1", "127.0.0.1:1"}, RequireAuthenticated: tc.require}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			e := NewEngine(cfg, EngineConfig{Timebase: NewTimebase(), Epoch: time.Now()})
			plain := e.Status().Servers[1]
			if plain.SetAside != tc.ignored || tc.ignored && !strings.Contains(plain.Error, "clock.require_authenticated") {
				t.Errorf("plain server %+v; want set aside %v, naming clock.require_authenticated", plain, tc.ignored)
			}
			if want := map[bool]int{true: 1, false: 2}[tc.ignored]; e.disc.cfg.Servers != want {
				t.Errorf("discipline counts %d servers for its majority, want %d", e.disc.cfg.Servers, want)
			}
		})
	}
}
