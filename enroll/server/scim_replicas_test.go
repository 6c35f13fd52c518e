package server

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll"
	"github.com/totpbox/totpbox/enroll/server/api"
)

// scimRig is two replicas on one PostgreSQL database, a SCIM token, and
// a user provisioned through replica A with an active MFA device.
type scimRig struct {
	a, b  *harness
	token string
	id    string
	key   enroll.Key
}

func newSCIMRig(t testing.TB) *scimRig {
	t.Helper()
	hs := replicas(t, 2, nil)
	r := &scimRig{a: hs[0], b: hs[1]}
	var err error
	if r.token, err = api.CreateScopedToken(t.Context(), r.a.st, "entra", "scim"); err != nil {
		t.Fatal(err)
	}
	m := r.scim(201, r.a, "POST", "/scim/v2/Users", `{"userName":"kiosk1","displayName":"Kiosk One","active":true}`)
	r.id = m["id"].(string)
	r.key, _ = r.a.registered("kiosk1", "token")
	return r
}

func (r *scimRig) scim(want int, h *harness, method, path, body string) map[string]any {
	h.t.Helper()
	status, raw := h.callRaw(method, path, body, r.token)
	var m map[string]any
	json.Unmarshal(raw, &m)
	if status != want {
		h.t.Fatalf("%s %s = %d %s, want %d", method, path, status, raw, want)
	}
	return m
}

func (r *scimRig) setActive(h *harness, active bool) {
	r.scim(200, h, "PATCH", "/scim/v2/Users/"+r.id,
		fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"%v"}]}`, active))
}

// verify asks h to verify the current code, and reports whether it was
// accepted.
func (r *scimRig) verify(h *harness) bool {
	status, v := h.call("POST", "/api/v1/verify", map[string]any{"username": "kiosk1", "code": enroll.Code(r.key, h.clock.Now())})
	return status == 200 && v["ok"] == true
}

// TestSCIMDisableOnEveryReplica: active false through replica A, and
// replica B, whose cache has just accepted the user's code, refuses the
// next code at once; the MFA device is kept, and active true makes codes
// work again on B.
func TestSCIMDisableOnEveryReplica(t *testing.T) {
	r := newSCIMRig(t)
	if !r.verify(r.b) {
		t.Fatal("B refuses the code of an active user")
	}
	r.a.clock.Advance(30 * time.Second)
	r.setActive(r.a, false)
	if r.verify(r.b) {
		t.Fatal("B accepts a code right after SCIM set active false on A")
	}
	devs := r.b.mustCall(200, "GET", "/api/v1/users/kiosk1/mfa-devices", nil)
	if list, _ := devs["mfa_devices"].([]any); len(list) != 1 {
		t.Fatalf("mfa devices after disable = %v, want the one kept", devs)
	}
	r.a.clock.Advance(30 * time.Second)
	r.setActive(r.a, true)
	if !r.verify(r.b) {
		t.Fatal("B refuses a code after SCIM set active true again")
	}
}

// BenchmarkSCIMDisableToRefusal measures, over 200 trials, the time from
// sending a SCIM PATCH active false to replica A until replica B refuses
// the user's next code (PostgreSQL, two replicas); it reports p50 and
// p99. Each trial enables the user again and moves the clock a step.
func BenchmarkSCIMDisableToRefusal(b *testing.B) {
	r := newSCIMRig(b)
	const trials = 200
	var took []time.Duration
	late := 0 // codes B accepted after the PATCH was answered
	for b.Loop() {
		took = took[:0]
		for range trials {
			r.setActive(r.a, true)
			r.a.clock.Advance(30 * time.Second)
			start := time.Now()
			r.setActive(r.a, false)
			for n := 0; r.verify(r.b); n++ {
				if n == 100 {
					b.Fatal("B still accepts codes 100 verifies after active false")
				}
				late++
				r.a.clock.Advance(30 * time.Second)
			}
			took = append(took, time.Since(start))
		}
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
	b.ReportMetric(float64(late), "late-accepts")
}
