package device

import (
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/totpbox/totpbox/device/vault"
)

// fakeTakeovers holds one takeover batch and records the answers.
type fakeTakeovers struct {
	mu      sync.Mutex
	batch   *Takeover
	answers []bool
}

func (f *fakeTakeovers) Takeover() (Takeover, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.batch == nil {
		return Takeover{}, false
	}
	return *f.batch, true
}

func (f *fakeTakeovers) AnswerTakeover(id string, accept bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.batch == nil || f.batch.ID != id {
		return ErrWithdrawn
	}
	f.batch = nil
	f.answers = append(f.answers, accept)
	return nil
}

func (f *fakeTakeovers) set(t *Takeover) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.batch = t
}

func (f *fakeTakeovers) got() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.answers...)
}

// TestTakeoverAskedOnceForTheBatch: a takeover batch is asked about
// before the codes, wakes a blank screen, and stays until OK or BACK
// answers it (NEXT does not set it aside); OK takes it over once and
// says so, BACK declines; no code is shown while it is asked.
func TestTakeoverAskedOnceForTheBatch(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer Button
		want   bool
		after  string
	}{
		{"OK takes over", OK, true, "Took over 10 accounts from Lobby"},
		{"BACK declines", Back, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tk := &fakeTakeovers{}
				r := start(t, Config{Takeovers: tk, BlankAfter: time.Minute}, account("a", vault.Active))
				defer r.stop()
				time.Sleep(2 * time.Minute)
				synctest.Wait()
				r.want(t, "blank", false)
				tk.set(&Takeover{ID: "batch-1", From: "Lobby", Count: 10})
				r.a.Refresh()
				synctest.Wait()
				if st := r.want(t, "takeover", false); st.Message != "Take over 10 accounts from Lobby?" {
					t.Fatalf("takeover screen says %q", st.Message)
				}
				r.press(Next)
				r.want(t, "takeover", false)
				if got := tk.got(); len(got) != 0 {
					t.Fatalf("NEXT answered the takeover: %v", got)
				}
				r.press(tc.answer)
				if got := tk.got(); len(got) != 1 || got[0] != tc.want {
					t.Fatalf("answers = %v, want [%v]", got, tc.want)
				}
				if tc.after != "" {
					if st := r.want(t, "message", false); st.Message != tc.after {
						t.Fatalf("after OK: %q, want %q", st.Message, tc.after)
					}
					r.press(OK)
				}
				r.want(t, "code", true)
			})
		})
	}
}
