package uplink

import (
	"github.com/totpbox/totpbox/enroll/store/storetest"

	"context"
	"errors"
	"github.com/totpbox/totpbox/internal/testkit"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device/vault"
	"github.com/totpbox/totpbox/enroll/server/appliance"
)

// handlerTransport serves requests with a handler in process, so the
// client runs in a synctest bubble; while down it fails every request.
type handlerTransport struct {
	h    http.Handler
	mu   sync.Mutex
	down bool
	at   []time.Time // when each request was sent
}

func (t *handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.at = append(t.at, time.Now())
	down := t.down
	t.mu.Unlock()
	if down {
		return nil, errors.New("connection refused")
	}
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

func (t *handlerTransport) setDown(d bool) {
	t.mu.Lock()
	t.down = d
	t.mu.Unlock()
}

func (t *handlerTransport) times() []time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]time.Time(nil), t.at...)
}

// TestBackoffSchedule runs the client in virtual time against a server
// that is down: retries come at jittered, doubling intervals capped at
// Max, and the first request after the server is back succeeds.
func TestBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api, err := appliance.New(appliance.Config{Store: storetest.OpenSQLite(t), Logger: testkit.Quiet()})
		if err != nil {
			t.Fatal(err)
		}
		tr := &handlerTransport{h: api.Handler(), down: true}
		dir := t.TempDir()
		v, err := vault.Open(filepath.Join(dir, "vault"), vault.Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer v.Close()
		b := Backoff{Min: time.Second, Max: 8 * time.Second}
		c, err := New(Config{Server: "http://127.0.0.1:1", StateDir: filepath.Join(dir, "state"), Vault: v,
			Clock: clock.System{}, Logger: testkit.Quiet(), Backoff: b,
			HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		at := tr.times()
		if len(at) < 8 {
			t.Fatalf("%d attempts in 2 minutes, want more", len(at))
		}
		for i := 1; i < len(at); i++ {
			want := b.Min << (i - 1)
			if want > b.Max || want <= 0 {
				want = b.Max
			}
			if gap := at[i].Sub(at[i-1]); gap < want/2 || gap > want {
				t.Errorf("retry %d came after %v, want %v to %v", i, gap, want/2, want)
			}
		}
		if st := c.Status(); st.Failures != len(at) || st.LastError == "" {
			t.Errorf("Status = %+v, want %d failures", st, len(at))
		}
		tr.setDown(false)
		time.Sleep(b.Max)
		synctest.Wait()
		if _, code, _ := c.PairingCode(); code == "" {
			t.Error("no pairing code once the server is back")
		}
		if st := c.Status(); st.Failures != 0 || st.LastError != "" {
			t.Errorf("Status after recovery = %+v", st)
		}
		cancel()
		<-done
	})
}
