package vault

import (
	"crypto/hmac"
	"crypto/sha1"
	"fmt"
	"testing"
)

// hmacTPM computes HMACs in software with the blob as the key, counting
// them; it implements only what codes asks of a TPM.
type hmacTPM struct {
	TPM
	calls int
}

func (t *hmacTPM) HMAC(blob, msg []byte) ([]byte, error) {
	t.calls++
	m := hmac.New(sha1.New, blob)
	m.Write(msg)
	return m.Sum(nil), nil
}

var _ TPM = (*hmacTPM)(nil)

// cached returns how many codes c holds.
func (c *codes) cached() int {
	n := 0
	for _, kept := range c.cache {
		n += len(kept)
	}
	return n
}

// TestCodesCacheBounded runs the screen's asks (the current and the next
// code, frames a second) over many time steps: the cache answers all but
// one TPM command a step per account, and holds keptSteps codes per
// account however many steps pass.
func TestCodesCacheBounded(t *testing.T) {
	for _, tc := range []struct {
		name     string
		accounts int
		steps    int64
	}{
		{"one account, a day", 1, 2880},
		{"three accounts, a day", 3, 2880},
		{"a week", 2, 7 * 2880},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &hmacTPM{}
			c := &codes{tpm: d}
			for step := range tc.steps {
				for frame := 0; frame < 30; frame++ {
					for a := range tc.accounts {
						blob := fmt.Appendf(nil, "blob of account %d", a)
						for _, s := range []int64{step, step + 1} {
							if _, err := c.code(blob, 6, s); err != nil {
								t.Fatal(err)
							}
						}
					}
				}
				if got, limit := c.cached(), keptSteps*tc.accounts; got > limit {
					t.Fatalf("after step %d: %d codes cached, want at most %d", step, got, limit)
				}
			}
			if want := int(tc.steps+1) * tc.accounts; d.calls != want {
				t.Errorf("%d TPM commands for %d steps of %d accounts, want %d", d.calls, tc.steps, tc.accounts, want)
			}
		})
	}
}

// TestCodesCacheAccountsBounded: codes for more accounts than
// maxCodeAccounts (accounts removed and added over time) do not pile up.
func TestCodesCacheAccountsBounded(t *testing.T) {
	c := &codes{tpm: &hmacTPM{}}
	for a := range 10 * maxCodeAccounts {
		if _, err := c.code(fmt.Appendf(nil, "blob %d", a), 6, 1); err != nil {
			t.Fatal(err)
		}
		if len(c.cache) > maxCodeAccounts {
			t.Fatalf("after %d accounts: codes of %d cached, want at most %d", a+1, len(c.cache), maxCodeAccounts)
		}
	}
}

// TestCodesCacheAnswers: a cached code is the one the TPM computed, for
// the step and digits asked.
func TestCodesCacheAnswers(t *testing.T) {
	d := &hmacTPM{}
	c := &codes{tpm: d}
	blob := []byte("blob")
	for _, tc := range []struct {
		step   int64
		digits int
		calls  int
	}{
		{10, 6, 1}, {10, 6, 1}, {10, 8, 2}, {11, 6, 3}, {10, 6, 3}, {9, 6, 4},
	} {
		got, err := c.code(blob, tc.digits, tc.step)
		if err != nil {
			t.Fatal(err)
		}
		fresh := &codes{tpm: &hmacTPM{}}
		want, _ := fresh.code(blob, tc.digits, tc.step)
		if got != want || len(got) != tc.digits {
			t.Errorf("code(step %d, %d digits) = %q, want %q", tc.step, tc.digits, got, want)
		}
		if d.calls != tc.calls {
			t.Errorf("after step %d, %d digits: %d TPM commands, want %d", tc.step, tc.digits, d.calls, tc.calls)
		}
	}
}
