package system

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/totpbox/totpbox/device"
	"github.com/totpbox/totpbox/enroll/server/api"
	"github.com/totpbox/totpbox/internal/testkit"
)

// BenchmarkOfferToScreen times a registration sent to an appliance, from
// the admin API's "register with appliance" request to the offer on the
// appliance's screen: the server seals and queues the offer, wakes the
// appliance's held long-poll over loopback HTTP, the client opens it and
// the loop shows it. Each offer is then rejected with BACK and the MFA
// device deleted.
func BenchmarkOfferToScreen(b *testing.B) {
	cfg := Config{Listen: "127.0.0.1:0", ServerListen: "127.0.0.1:0", DataDir: b.TempDir()}
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	app := s.appliances[0]
	for deadline := time.Now().Add(20 * time.Second); ; {
		if st := app.Client().Status(); st.Paired && st.Link == "up" {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("appliance not paired")
		}
		time.Sleep(10 * time.Millisecond)
	}
	token, err := api.CreateToken(ctx, s.server.store, "bench")
	if err != nil {
		b.Fatal(err)
	}
	api := apiClient{t: nil, tb: b, base: s.server.URL(), token: token}
	if code := api.do("POST", "/api/v1/users", map[string]string{"username": "bench"}, nil); code != 201 {
		b.Fatalf("create user = %d", code)
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var created struct {
			ID json.Number `json:"id"`
		}
		t0 := time.Now()
		if code := api.do("POST", "/api/v1/users/bench/mfa-devices", map[string]string{"name": fmt.Sprint("token ", i), "appliance": "Simulated appliance 0"}, &created); code != 201 {
			b.Fatalf("register = %d", code)
		}
		for !app.Loop().Status().OfferPending {
			if time.Since(t0) > 10*time.Second {
				b.Fatal("offer not shown within 10 s")
			}
			time.Sleep(200 * time.Microsecond)
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		if err := app.Press(ctx, device.Back); err != nil {
			b.Fatal(err)
		}
		api.do("DELETE", "/api/v1/users/bench/mfa-devices/"+created.ID.String(), nil, nil)
		b.StartTimer()
	}
	b.StopTimer()
	testkit.ReportLatency(b, lat)
	b.ReportMetric(0, "ns/op")
}
