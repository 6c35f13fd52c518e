package webhook

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
	"github.com/totpbox/totpbox/internal/testkit"
)

func testSealer(t testing.TB) *store.Sealer {
	key := make([]byte, store.KeySize)
	rand.Read(key)
	s, err := store.NewSealer(store.MasterKey{ID: store.KeyID(key), Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// received is one request a receiver got.
type received struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
	status  int
}

// receiver records deliveries; answer picks each one's status.
type receiver struct {
	mu     sync.Mutex
	got    []received
	answer func(id string, n int) int // n: how many times id came before
	seen   map[string]int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	id := r.Header.Get("webhook-id")
	rc.mu.Lock()
	if rc.seen == nil {
		rc.seen = map[string]int{}
	}
	n := rc.seen[id]
	rc.seen[id]++
	rc.mu.Unlock()
	status := 200
	if rc.answer != nil {
		status = rc.answer(id, n)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, received{Headers: map[string]string{
		"webhook-id": id, "webhook-timestamp": r.Header.Get("webhook-timestamp"), "webhook-signature": r.Header.Get("webhook-signature"),
	}, Body: string(b), status: status})
	rc.mu.Unlock()
	w.WriteHeader(status)
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// addEndpoint stores an endpoint for url with a new secret, returned.
func addEndpoint(t *testing.T, st store.Store, sealer Sealer, id, url string) string {
	t.Helper()
	secret := NewSecret()
	sealed, err := sealer.Seal([]byte(secret), SecretAAD(id))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateWebhook(t.Context(), store.WebhookEndpoint{ID: id, URL: url, Events: []string{"*"}, Secret: sealed}); err != nil {
		t.Fatal(err)
	}
	return secret
}

func addEvent(t *testing.T, st store.Store, id, typ string, at time.Time) {
	t.Helper()
	if err := st.AuditWithEvent(t.Context(), store.AuditEvent{Time: at, Actor: "system", Action: "test"},
		store.WebhookEvent{ID: id, Type: typ, Time: at, Data: fmt.Sprintf(`{"user":"alice","n":%q}`, id)}); err != nil {
		t.Fatal(err)
	}
}

// TestStandardWebhooksVerifies has the Standard Webhooks reference
// verifier (npm standardwebhooks, run by node) check a delivery: it
// verifies, and a tampered body or an old timestamp fails.
func TestStandardWebhooksVerifies(t *testing.T) {
	modules := testkit.NodeModules(t, "standardwebhooks")
	st, sealer := storetest.OpenSQLite(t), testSealer(t)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	secret := addEndpoint(t, st, sealer, "wh_1", srv.URL+"/hook")
	addEvent(t, st, "msg_one", "device.registered", time.Now())
	d, err := New(Config{Store: st, Sealer: sealer, Owner: "r1", AllowPrivateTargets: true, Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if n := d.Once(t.Context()); n != 1 {
		t.Fatalf("Once = %d, want 1 delivery", n)
	}
	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	genuine := got[0]
	var body struct {
		Type      string          `json:"type"`
		Timestamp time.Time       `json:"timestamp"`
		Data      json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal([]byte(genuine.Body), &body); err != nil || body.Type != "device.registered" || string(body.Data) != `{"user":"alice","n":"msg_one"}` {
		t.Fatalf("body = %s (%v), want type, timestamp and data", genuine.Body, err)
	}
	if genuine.Headers["webhook-id"] != "msg_one" {
		t.Errorf("webhook-id = %q, want the event id msg_one", genuine.Headers["webhook-id"])
	}

	tampered := genuine
	tampered.Body = strings.Replace(genuine.Body, "alice", "mallory", 1)
	old := genuine
	key, _ := Key(secret)
	oldTS := time.Now().Add(-10 * time.Minute)
	old.Headers = map[string]string{"webhook-id": "msg_one", "webhook-timestamp": fmt.Sprint(oldTS.Unix()),
		"webhook-signature": Sign(key, "msg_one", oldTS, []byte(genuine.Body))}
	wrongSecret := genuine
	cases := []struct {
		Name     string   `json:"name"`
		Secret   string   `json:"secret"`
		Delivery received `json:"delivery"`
	}{
		{"genuine", secret, genuine},
		{"tampered body", secret, tampered},
		{"old timestamp", secret, old},
		{"another secret", NewSecret(), wrongSecret},
	}
	in, _ := json.Marshal(cases)
	script := `
const { Webhook } = require("standardwebhooks");
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
for (const c of cases) {
  try {
    new Webhook(c.secret).verify(c.delivery.body, c.delivery.headers);
    console.log(c.name + ": ok");
  } catch (e) {
    console.log(c.name + ": " + e.message);
  }
}`
	path := filepath.Join(t.TempDir(), "verify.js")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("node", path)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = strings.NewReader(string(in))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	want := "genuine: ok\ntampered body: No matching signature found\nold timestamp: Message timestamp too old\nanother secret: No matching signature found\n"
	if string(out) != want {
		t.Errorf("standardwebhooks says:\n%s\nwant:\n%s", out, want)
	}
}

// TestPrivateTargetRefusedAtDial stores an endpoint whose URL passed the
// check but whose address is loopback (as a name resolving there would
// be): the delivery is refused when it connects, and retried later.
func TestPrivateTargetRefusedAtDial(t *testing.T) {
	st, sealer := storetest.OpenSQLite(t), testSealer(t)
	rc := &receiver{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	addEndpoint(t, st, sealer, "wh_1", srv.URL+"/hook")
	addEvent(t, st, "msg_1", "device.locked", time.Now())
	d, err := New(Config{Store: st, Sealer: sealer, Owner: "r1", Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	d.Once(t.Context())
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("receiver on loopback got %d requests, want 0", n)
	}
	ds, err := st.ClaimDeliveries(t.Context(), "check", time.Now().Add(time.Hour), time.Now().Add(2*time.Hour), 10)
	if err != nil || len(ds) != 1 || !strings.Contains(ds[0].LastError, "address 127.0.0.1 is loopback") {
		t.Fatalf("delivery after a refused dial = %+v, %v; want pending with the refusal", ds, err)
	}
}

// TestRedirectNotFollowed: a 3xx answer is a failure, its target never
// reached.
func TestRedirectNotFollowed(t *testing.T) {
	st, sealer := storetest.OpenSQLite(t), testSealer(t)
	other := &receiver{}
	osrv := httptest.NewServer(other)
	defer osrv.Close()
	redir := httptest.NewServer(http.RedirectHandler(osrv.URL, http.StatusTemporaryRedirect))
	defer redir.Close()
	addEndpoint(t, st, sealer, "wh_1", redir.URL)
	addEvent(t, st, "msg_1", "device.locked", time.Now())
	d, _ := New(Config{Store: st, Sealer: sealer, Owner: "r1", AllowPrivateTargets: true, Logger: testkit.Logger(t)})
	d.Once(t.Context())
	if n := len(other.requests()); n != 0 {
		t.Errorf("the redirect's target got %d requests, want 0", n)
	}
}

// TestBackoff checks the retry schedule: doubling from 5 s, capped at an
// hour, and dead after 24 hours.
func TestBackoff(t *testing.T) {
	var total time.Duration
	n := 0
	for total < RetryFor {
		b := Backoff(n)
		base := min(5*time.Second<<min(n, 10), time.Hour)
		if b < base || b > base+base/10 {
			t.Errorf("Backoff(%d) = %v, want %v to %v", n, b, base, base+base/10)
		}
		total += b
		n++
	}
	if n < 25 || n > 40 {
		t.Errorf("%d attempts in 24 hours, want about 30", n)
	}
}

// TestTwoReplicas runs two deliverers on one PostgreSQL database against
// a receiver that is slow, then fails each event's first attempt; one
// replica stops in the middle of a delivery. Every event is delivered,
// and a duplicate carries the same webhook-id and body.
func TestTwoReplicas(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	schema := storetest.CreateSchema(t, dsn)
	open := func() store.Store {
		s, err := store.OpenPostgres(t.Context(), storetest.WithSearchPath(dsn, schema))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(), open()
	sealer := testSealer(t)
	clock := testkit.NewClock(time.Now())
	release := make(chan struct{})
	var slowOnce sync.Once
	rc := &receiver{}
	rc.answer = func(id string, n int) int {
		block := false
		slowOnce.Do(func() { block = true })
		if block {
			<-release // the first request hangs until its replica stops
			return 200
		}
		if n == 0 {
			return 500 // each event's first attempt fails
		}
		return 204
	}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	addEndpoint(t, a, sealer, "wh_1", srv.URL)
	const events = 20
	for i := range events {
		addEvent(t, a, fmt.Sprint("msg_", i), "device.locked", clock.Now())
	}
	mk := func(st store.Store, owner string) *Deliverer {
		d, err := New(Config{Store: st, Sealer: sealer, Owner: owner, AllowPrivateTargets: true, Clock: clock, Logger: testkit.Quiet()})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	da, db := mk(a, "replica-a"), mk(b, "replica-b")

	// Replica a takes the first batch and hangs on the slow request;
	// it is stopped mid-delivery.
	ctxA, stopA := context.WithCancel(t.Context())
	doneA := make(chan struct{})
	go func() { da.Once(ctxA); close(doneA) }()
	testkit.WaitFor(t, 10*time.Second, "replica a's first request", func() bool { return slowStarted(rc) })
	stopA()
	<-doneA
	close(release)

	// Replica b delivers the rest; a's leased deliveries come back to
	// it when their lease runs out. Time moves on past each backoff.
	deadline := time.Now().Add(20 * time.Second)
	for !allDelivered(rc, events) {
		if time.Now().After(deadline) {
			t.Fatalf("not every event delivered: %v", rc.seen)
		}
		if db.Once(t.Context()) == 0 {
			clock.Advance(time.Minute)
		}
	}
	byID := map[string]string{}
	for _, r := range rc.requests() {
		id := r.Headers["webhook-id"]
		if prev, ok := byID[id]; ok && prev != r.Body {
			t.Errorf("event %s delivered with two bodies:\n%s\n%s", id, prev, r.Body)
		}
		byID[id] = r.Body
		if !strings.Contains(r.Body, `"n":"`+id+`"`) {
			t.Errorf("delivery with webhook-id %s carries another event's body: %s", id, r.Body)
		}
	}
	if len(byID) != events {
		t.Errorf("%d distinct webhook-ids, want %d", len(byID), events)
	}
}

// TestRunRecordsOutcomes runs the deliverer as a server does: the
// outcomes of a round, recorded with the next round's claim, are all
// recorded (the failed one pending with its error, then delivered), and
// those of the last round too once Run stops.
func TestRunRecordsOutcomes(t *testing.T) {
	st, sealer := storetest.OpenSQLite(t), testSealer(t)
	rc := &receiver{answer: func(id string, n int) int {
		if id == "msg_fail" {
			return 503
		}
		return 204
	}}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	addEndpoint(t, st, sealer, "wh_1", srv.URL)
	d, err := New(Config{Store: st, Sealer: sealer, Owner: "r1", AllowPrivateTargets: true, Poll: 10 * time.Millisecond, Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	addEvent(t, st, "msg_fail", "device.locked", time.Now())
	addEvent(t, st, "msg_1", "device.locked", time.Now())
	d.Wake()
	testkit.WaitFor(t, 10*time.Second, "the first round's outcomes", func() bool {
		ds, err := st.Deliveries(t.Context(), store.DeliveryDelivered, 10)
		return err == nil && len(ds) == 1
	})
	addEvent(t, st, "msg_2", "device.locked", time.Now())
	d.Wake()
	testkit.WaitFor(t, 10*time.Second, "msg_2 attempted", func() bool { return allDelivered(rc, 2) })
	stop()
	<-done
	ds, err := st.Deliveries(t.Context(), store.DeliveryDelivered, 10)
	if err != nil || len(ds) != 2 {
		t.Fatalf("after Run stopped, delivered = %+v, %v; want msg_1 and msg_2", ds, err)
	}
	pending, err := st.Deliveries(t.Context(), store.DeliveryPending, 10)
	if err != nil || len(pending) != 1 || pending[0].Event.ID != "msg_fail" || pending[0].Attempts != 1 || pending[0].LastError != "HTTP 503" {
		t.Errorf("pending = %+v, %v; want msg_fail after 1 attempt with HTTP 503", pending, err)
	}
}

func slowStarted(rc *receiver) bool {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.seen) > 0
}

// allDelivered reports whether each of n events got a 2xx answer.
func allDelivered(rc *receiver, n int) bool {
	ok := map[string]bool{}
	for _, r := range rc.requests() {
		if r.status >= 200 && r.status < 300 {
			ok[r.Headers["webhook-id"]] = true
		}
	}
	return len(ok) == n
}
