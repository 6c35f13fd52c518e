package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/internal/testkit"
)

// BenchmarkFleetOffer measures an offer created through the admin API of
// one replica until the long-poll an appliance holds on a replica answers
// with it: "same" holds the poll on the replica that takes the offer,
// "cross" on the other (woken through LISTEN/NOTIFY). Two replicas share
// one PostgreSQL schema. Run with -benchtime=100x for the p50/p99 of 100
// offers; it reports them as p50-ms and p99-ms.
func BenchmarkFleetOffer(b *testing.B) {
	for _, where := range []string{"same", "cross"} {
		b.Run(where, func(b *testing.B) {
			hs := replicas(b, 2, func(c *Config) { c.Logger = testkit.Quiet() })
			holder, sender := hs[0], hs[1]
			if where == "same" {
				sender = holder
			}
			kiosk := holder.newAppliance()
			in, err := holder.srv.Appliances().Pair(context.Background(), kiosk.pairingCode(), "Bench")
			if err != nil {
				b.Fatal(err)
			}
			kiosk.id = in.ID
			ts := httptest.NewServer(holder.srv.Handler())
			defer ts.Close()
			var rev int64
			var lat []time.Duration
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				user := fmt.Sprintf("u%d", i)
				sender.mustCall(201, "POST", "/api/v1/users", map[string]any{"username": user})
				got := make(chan int64, 1)
				go func(after int64) {
					q := proto.SyncQuery{After: after, Wait: proto.MaxWait}
					req, _ := http.NewRequest("GET", ts.URL+proto.ChangesPath(kiosk.id)+"?"+q.Encode().Encode(), nil)
					proto.Sign(req, nil, kiosk.sign, holder.clock.Now())
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						got <- -1
						return
					}
					defer resp.Body.Close()
					var c proto.Changes
					json.NewDecoder(resp.Body).Decode(&c)
					got <- c.Rev
				}(rev)
				testkit.WaitFor(b, 30*time.Second, "long-poll held", func() bool {
					in, err := holder.srv.Appliances().Appliance(context.Background(), kiosk.id)
					return err == nil && in.Online
				})
				b.StartTimer()
				t0 := time.Now()
				sender.mustCall(201, "POST", "/api/v1/users/"+user+"/mfa-devices", map[string]any{"name": "T", "appliance": kiosk.id})
				rev = <-got
				lat = append(lat, time.Since(t0))
				if rev <= 0 {
					b.Fatal("the long-poll failed")
				}
			}
			b.StopTimer()
			testkit.ReportLatency(b, lat)
		})
	}
}
