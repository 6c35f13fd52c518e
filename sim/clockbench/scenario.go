package clockbench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/totpbox/totpbox/sim/ntpsim"
	"github.com/totpbox/totpbox/sim/osc"
)

// scenario builds the world of one bench run.
type scenario struct {
	name    string
	about   string
	ppm     float64 // default frequency offset
	wander  float64 // default wander
	diurnal float64 // diurnal amplitude, ppm
	hours   float64 // default hours of synchronised running
	servers func(r *rand.Rand) []ntpsim.Server
	// suspend, when set, suspends the machine for this long halfway.
	suspend time.Duration
}

func lanServer(i int, r *rand.Rand) ntpsim.Server {
	return ntpsim.Server{
		Address:        fmt.Sprintf("ntp%d.lan:123", i),
		BaseDelay:      100 * time.Microsecond, // each way, as chrony's tests
		Jitter:         100 * time.Microsecond, // exponential, each way
		RootDispersion: 10 * time.Microsecond,
	}
}

// jitterPath is a server behind a loaded path: 3 ms ± 1 ms each way, and
// one packet in ten, each way on its own, waiting in a queue for an
// exponential extra delay of mean 15 ms. The real-time test beside chronyd
// in package clock puts the same path in front of a real server.
func jitterPath(addr string) ntpsim.Server {
	return ntpsim.Server{
		Address:        addr,
		BaseDelay:      3 * time.Millisecond,
		Spread:         time.Millisecond,
		SpikeRate:      0.1,
		SpikeMean:      15 * time.Millisecond,
		RootDispersion: 10 * time.Microsecond,
	}
}

func lanServers(n int) func(r *rand.Rand) []ntpsim.Server {
	return func(r *rand.Rand) []ntpsim.Server {
		s := make([]ntpsim.Server, n)
		for i := range s {
			s[i] = lanServer(i+1, r)
		}
		return s
	}
}

var scenarios = map[string]scenario{
	"lan": {
		name:    "lan",
		about:   "chrony's simulation defaults: 4 servers, 100 µs delay, 100 µs exponential jitter",
		ppm:     100,
		wander:  1e-9,
		hours:   4,
		servers: lanServers(4),
	},
	"internet": {
		name:   "internet",
		about:  "4 servers, 20–80 ms round trips, 5 ms jitter, asymmetric paths, 2% loss",
		ppm:    50,
		wander: 1e-9,
		hours:  6,
		servers: func(r *rand.Rand) []ntpsim.Server {
			s := make([]ntpsim.Server, 4)
			for i := range s {
				rtt := 20*time.Millisecond + time.Duration(r.Float64()*float64(60*time.Millisecond))
				s[i] = ntpsim.Server{
					Address:        fmt.Sprintf("ntp%d.example.net:123", i+1),
					BaseDelay:      rtt / 2,
					Jitter:         2500 * time.Microsecond,
					Asymmetry:      time.Duration((r.Float64()*2 - 1) * float64(rtt/4)),
					Loss:           0.02,
					RootDelay:      time.Duration(r.Float64() * float64(10*time.Millisecond)),
					RootDispersion: time.Duration(r.Float64() * float64(5*time.Millisecond)),
					Stratum:        2,
				}
			}
			return s
		},
	},
	"falseticker": {
		name:   "falseticker",
		about:  "5 servers, one 1 h ahead, one 3 s ahead",
		ppm:    50,
		wander: 1e-9,
		hours:  4,
		servers: func(r *rand.Rand) []ntpsim.Server {
			s := lanServers(5)(r)
			s[1].Error = time.Hour
			s[3].Error = 3 * time.Second
			return s
		},
	},
	"outage": {
		name:    "outage",
		about:   "30 h synchronised with a ±1 ppm diurnal swing and wander, then all servers gone",
		ppm:     50,
		wander:  1e-9,
		diurnal: 1,
		hours:   30,
		servers: lanServers(4),
	},
	"flaky": {
		name:   "flaky",
		about:  "4 servers, 12% of packets pass",
		ppm:    50,
		wander: 1e-9,
		hours:  6,
		servers: func(r *rand.Rand) []ntpsim.Server {
			s := lanServers(4)(r)
			for i := range s {
				s[i].Loss = 0.88
			}
			return s
		},
	},
	"kod": {
		name:   "kod",
		about:  "4 servers, one rate-limits with kiss-of-death RATE (1 query per 60 s), one denies service",
		ppm:    50,
		wander: 1e-9,
		hours:  4,
		servers: func(r *rand.Rand) []ntpsim.Server {
			s := lanServers(4)(r)
			s[0].Kiss, s[0].KissInterval = "RATE", time.Minute
			s[1].Kiss = "DENY"
			return s
		},
	},
	"jitter": {
		name: "jitter",
		about: "1 server, 3 ms ± 1 ms each way, 10% of packets each way queued " +
			"for an exponential spike of mean 15 ms; 12 min",
		ppm:    30,
		wander: 1e-9,
		hours:  0.2,
		servers: func(r *rand.Rand) []ntpsim.Server {
			return []ntpsim.Server{jitterPath("ntp1.lan:123")}
		},
	},
	"suspend": {
		name:    "suspend",
		about:   "4 servers; the machine is suspended for 30 min halfway",
		ppm:     50,
		wander:  1e-9,
		hours:   4,
		servers: lanServers(4),
		suspend: 30 * time.Minute,
	},
}

// Scenarios returns the scenario names, sorted.
func Scenarios() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookup(name string) (scenario, error) {
	s, ok := scenarios[name]
	if !ok {
		return scenario{}, fmt.Errorf("clockbench: unknown scenario %q (have %s)", name, strings.Join(Scenarios(), ", "))
	}
	return s, nil
}

// oscillator builds the run's oscillator.
func (s scenario) oscillator(ppm, wander float64, seed uint64, r *rand.Rand) *osc.Oscillator {
	return osc.New(osc.Config{
		PPM:          ppm,
		Wander:       wander,
		DiurnalPPM:   s.diurnal,
		DiurnalPhase: r.Float64() * 2 * math.Pi,
		Noise:        100 * time.Nanosecond,
		Seed:         seed,
	})
}
