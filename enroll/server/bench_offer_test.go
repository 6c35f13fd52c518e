package server

import (
	"github.com/totpbox/totpbox/internal/testkit"

	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/store"
	"github.com/totpbox/totpbox/enroll/store/storetest"
)

// BenchmarkConsoleOffer measures an offer from the console's "Send to
// appliance" (the form POST, with session, CSRF check, key decryption and
// the offer sealed to the appliance) to the appliance's held long-poll
// answering with it, over a real loopback listener. Each offer is rejected
// afterwards, as the appliance's BACK button would. Run it with
// -benchtime=100x for the p50/p99 of 100 offers.
func BenchmarkConsoleOffer(b *testing.B) {
	stores := []struct {
		name string
		open func(testing.TB) store.Store
	}{{"sqlite", storetest.OpenSQLite}}
	if os.Getenv(storetest.PostgresDSNEnv) != "" {
		stores = append(stores, struct {
			name string
			open func(testing.TB) store.Store
		}{"postgres", storetest.OpenPostgres})
	}
	for _, s := range stores {
		b.Run(s.name, func(b *testing.B) { benchConsoleOffer(b, s.open(b)) })
	}
}

func benchConsoleOffer(b *testing.B, st store.Store) {
	h := newHarness(b, st, func(c *Config) { c.Logger = testkit.Quiet() })
	h.admin()
	ctx := context.Background()
	kiosk := h.newAppliance()
	in, err := h.srv.Appliances().Pair(ctx, kiosk.pairingCode(), "Bench kiosk")
	if err != nil {
		b.Fatal(err)
	}
	kiosk.id = in.ID
	br := h.browser()
	page := br.signIn("root", adminPassword, nil, h.clock)
	token := csrf(b, page)
	br.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	h.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": "lena"})

	// The appliance: one long-poll at a time, each offer reported on
	// delivered and rejected.
	delivered := make(chan time.Time, 1)
	pollCtx, stop := context.WithCancel(ctx)
	defer stop()
	client := &http.Client{}
	signed := func(method, target string, body []byte) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(pollCtx, method, br.base+target, bytes.NewReader(body))
		proto.Sign(req, body, kiosk.sign, h.clock.Now())
		return client.Do(req)
	}
	go func() {
		var rev int64
		for pollCtx.Err() == nil {
			q := proto.SyncQuery{After: rev, Wait: proto.MaxWait}
			resp, err := signed("GET", proto.ChangesPath(kiosk.id)+"?"+q.Encode().Encode(), nil)
			if err != nil {
				return
			}
			var c proto.Changes
			err = json.NewDecoder(resp.Body).Decode(&c)
			resp.Body.Close()
			if err != nil {
				return
			}
			var acks []proto.Ack
			for _, ch := range c.Changes {
				if ch.Kind == proto.KindOffer && ch.Rev > rev {
					delivered <- time.Now()
					acks = append(acks, proto.Ack{Rev: ch.Rev, Result: proto.ResultRejected})
				}
			}
			rev = c.Rev
			if len(acks) > 0 {
				body, _ := json.Marshal(proto.AckRequest{Acks: acks})
				if resp, err := signed("POST", proto.AckPath(kiosk.id), body); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	}()

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		m := h.mustCall(201, "POST", "/api/v1/users/lena/mfa-devices", map[string]any{"name": fmt.Sprintf("token %d", i)})
		id := int64(m["id"].(float64))
		time.Sleep(5 * time.Millisecond) // let the appliance's poll settle
		b.StartTimer()
		t0 := time.Now()
		resp, err := br.c.PostForm(br.base+fmt.Sprintf("/users/lena/mfa-devices/%d/send", id), url.Values{"appliance": {kiosk.id}, "csrf": {token}})
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "/configure") {
			b.Fatalf("send = %s", resp.Status)
		}
		select {
		case at := <-delivered:
			lat = append(lat, at.Sub(t0))
		case <-time.After(30 * time.Second):
			b.Fatal("the appliance never got the offer")
		}
		b.StopTimer()
		// Keep the user under the device limit.
		h.mustCall(204, "DELETE", devPath("lena", id), nil)
		b.StartTimer()
	}
	b.StopTimer()
	testkit.ReportLatency(b, lat)
	b.ReportMetric(0, "ns/op")
}
