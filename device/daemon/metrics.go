package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/totpbox/totpbox/clock"
	"github.com/totpbox/totpbox/device"
	"github.com/totpbox/totpbox/device/hw"
	"github.com/totpbox/totpbox/device/uplink"
	"github.com/totpbox/totpbox/internal/wallclock"
)

// metrics are totpd's Prometheus metrics. Counters are updated by the
// panel's and the loop's callbacks; the clock, the panel's state and the
// vault are read at each scrape.
type metrics struct {
	reg          *prometheus.Registry
	reveals      prometheus.Counter
	frames       prometheus.Counter
	panelErrors  *prometheus.CounterVec
	panelReopens prometheus.Counter
	syncSeconds  *prometheus.HistogramVec
	syncErrors   prometheus.Counter

	lastView atomic.Pointer[string] // the view of the last frame, for reveals
}

// newMetrics returns the metrics with the process and Go runtime collectors
// and a build_info gauge registered.
func newMetrics(version string) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		reveals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "totpd_code_reveals_total",
			Help: "Codes revealed by a press of OK while hidden (screen.hidden).",
		}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "totpd_frames_total",
			Help: "Frames drawn on the panel.",
		}),
		panelErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "totpd_panel_errors_total",
			Help: "Panel errors: kind=bus for a bus error on an open panel, kind=open for a failed open or reopen.",
		}, []string{"kind"}),
		panelReopens: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "totpd_panel_reopens_total",
			Help: "Times the panel was reopened after going down.",
		}),
		syncSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "totpd_sync_request_seconds",
			Help:    "Sync requests to the registration server by duration; held=true for long-polls the server may hold up to 60 s, held=false for immediate ones (their latency).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30, 60, 90},
		}, []string{"held"}),
		syncErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "totpd_sync_errors_total",
			Help: "Sync requests that failed (server unreachable or refusing).",
		}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "totpd_build_info",
		Help:        "Always 1; the version label is totpd's version.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.panelErrors.WithLabelValues("bus")
	m.panelErrors.WithLabelValues("open")
	m.reg.MustRegister(m.reveals, m.frames, m.panelErrors, m.panelReopens, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// panelEvent counts a Resilient panel's event; it is ResilientConfig.OnEvent.
func (m *metrics) panelEvent(e hw.PanelEvent) {
	switch e {
	case hw.PanelFailed:
		m.panelErrors.WithLabelValues("bus").Inc()
	case hw.PanelOpenFailed:
		m.panelErrors.WithLabelValues("open").Inc()
	case hw.PanelReopened:
		m.panelReopens.Inc()
	}
}

// frame counts a drawn frame, and a reveal when a hidden code is now shown:
// only a press of OK turns the hidden view into the code view.
func (m *metrics) frame(st device.Status) {
	m.frames.Inc()
	view := st.View
	prev := m.lastView.Swap(&view)
	if prev != nil && *prev == "hidden" && view == "code" {
		m.reveals.Inc()
	}
}

// sync records one sync request; it is uplink.Config.OnSync.
func (m *metrics) sync(wait, took time.Duration, err error) {
	if err != nil {
		m.syncErrors.Inc()
		return
	}
	m.syncSeconds.WithLabelValues(strconv.FormatBool(wait > 0)).Observe(took.Seconds())
}

// watchSync registers the sync client's state, read at each scrape.
func (m *metrics) watchSync(status func() uplink.Status) {
	m.reg.MustRegister(m.syncSeconds, m.syncErrors,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "totpd_sync_paired",
			Help: "1 while the appliance is paired with its registration server.",
		}, func() float64 { return boolValue(status().Paired) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "totpd_sync_link_up",
			Help: "1 while syncs with the registration server succeed.",
		}, func() float64 { return boolValue(status().Link == "up") }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "totpd_sync_consecutive_failures",
			Help: "Sync failures since the last success.",
		}, func() float64 { return float64(status().Failures) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "totpd_sync_pending_acks",
			Help: "Answers to the server waiting to be delivered.",
		}, func() float64 { return float64(status().PendingAcks) }))
}

// watch registers gauges read at each scrape: the clock's status, whether
// the panel is up, and how many accounts the vault holds.
func (m *metrics) watch(clk interface{ Status() clock.Status }, panelUp func() bool, accounts func() int) {
	m.reg.MustRegister(clockCollector{status: clk.Status},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "totpd_panel_up",
			Help: "1 while the panel is open, 0 while it is down and being reopened.",
		}, func() float64 { return boolValue(panelUp()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "totpd_accounts",
			Help: "Accounts in the vault.",
		}, func() float64 { return float64(accounts()) }))
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var (
	descClockState = prometheus.NewDesc("totpd_clock_state",
		"1 for the clock's current trust state (UNSYNCED, SYNCED, HOLDOVER, UNTRUSTED), 0 for the others.", []string{"state"}, nil)
	descClockBound = prometheus.NewDesc("totpd_clock_error_bound_seconds",
		"How far the true time may be from the clock's reading; +Inf when the clock knows nothing.", nil, nil)
	descClockFrequency = prometheus.NewDesc("totpd_clock_frequency_ppm",
		"The oscillator's estimated frequency error (positive runs fast); absent until measured.", nil, nil)
	descClockSkew = prometheus.NewDesc("totpd_clock_frequency_skew_ppm",
		"Uncertainty of the frequency estimate; absent until measured.", nil, nil)
	descClockPoll = prometheus.NewDesc("totpd_clock_poll_interval_seconds",
		"The current NTP polling interval.", nil, nil)
	descClockSinceUpdate = prometheus.NewDesc("totpd_clock_since_update_seconds",
		"Time since the clock was last updated from an agreeing majority; absent before the first update.", nil, nil)
	descServerOffset = prometheus.NewDesc("totpd_clock_server_offset_seconds",
		"The server's time minus the clock's, at its last sample.", []string{"server"}, nil)
	descServerDelay = prometheus.NewDesc("totpd_clock_server_delay_seconds",
		"Round trip of the server's last sample.", []string{"server"}, nil)
	descServerReach = prometheus.NewDesc("totpd_clock_server_reach",
		"The server's 8-poll reachability register (255: the last 8 polls answered).", []string{"server"}, nil)
	descServerSelected = prometheus.NewDesc("totpd_clock_server_selected",
		"1 when the last selection used the server.", []string{"server"}, nil)
	descServerFailures = prometheus.NewDesc("totpd_clock_server_failures_total",
		"Polls of the server that gave no sample (no reply, unusable or refused replies, failed key exchanges).", []string{"server"}, nil)
	descServerAuthenticated = prometheus.NewDesc("totpd_clock_server_authenticated",
		"1 when the NTS server's last reply passed authentication; absent for plain NTP servers.", []string{"server"}, nil)
	descServerCookies = prometheus.NewDesc("totpd_clock_server_nts_cookies",
		"Unused NTS cookies held for the server.", []string{"server"}, nil)
	descServerSinceKE = prometheus.NewDesc("totpd_clock_server_nts_since_key_exchange_seconds",
		"Time since the last successful NTS key exchange with the server; absent before the first.", []string{"server"}, nil)
	descServerKEFailures = prometheus.NewDesc("totpd_clock_server_nts_key_exchange_failures_total",
		"NTS key exchanges with the server that failed (TLS, certificate, unusable reply).", []string{"server"}, nil)
	descServerAuthFailures = prometheus.NewDesc("totpd_clock_server_nts_auth_failures_total",
		"Replies refused because they failed NTS authentication (forged, changed on the way, answering another request).", []string{"server"}, nil)
	descServerNAKs = prometheus.NewDesc("totpd_clock_server_nts_naks_total",
		"NTS-NAKs from the server (cookie refused; a new key exchange follows).", []string{"server"}, nil)
)

// clockStates are the values of the state label, in clock.State order.
var clockStates = []clock.State{clock.Unsynced, clock.Synced, clock.Holdover, clock.Untrusted}

// clockCollector reports the clock's status at each scrape.
type clockCollector struct {
	status func() clock.Status
}

// Describe implements prometheus.Collector.
func (c clockCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descClockState, descClockBound, descClockFrequency, descClockSkew,
		descClockPoll, descClockSinceUpdate, descServerOffset, descServerDelay, descServerReach, descServerSelected,
		descServerFailures, descServerAuthenticated, descServerCookies, descServerSinceKE, descServerKEFailures,
		descServerAuthFailures, descServerNAKs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c clockCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, s := range clockStates {
		gauge(descClockState, boolValue(st.State == s), s.String())
	}
	bound := st.Bound
	if bound < 0 {
		bound = math.Inf(1)
	}
	gauge(descClockBound, bound)
	if st.FrequencyKnown {
		gauge(descClockFrequency, st.Frequency)
		if st.Skew >= 0 {
			gauge(descClockSkew, st.Skew)
		}
	}
	gauge(descClockPoll, st.PollInterval)
	if st.SinceUpdate >= 0 {
		gauge(descClockSinceUpdate, st.SinceUpdate)
	}
	for _, s := range st.Servers {
		gauge(descServerReach, float64(s.Reach), s.Address)
		gauge(descServerSelected, boolValue(s.Selected), s.Address)
		if s.Reach != 0 {
			gauge(descServerOffset, s.Offset, s.Address)
			gauge(descServerDelay, s.Delay, s.Address)
		}
		counter := func(d *prometheus.Desc, v int) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), s.Address)
		}
		counter(descServerFailures, s.Failures)
		if !s.NTS {
			continue
		}
		gauge(descServerAuthenticated, boolValue(s.Authenticated), s.Address)
		gauge(descServerCookies, float64(s.Cookies), s.Address)
		if s.SinceKE >= 0 {
			gauge(descServerSinceKE, s.SinceKE, s.Address)
		}
		counter(descServerKEFailures, s.KEFailures)
		counter(descServerAuthFailures, s.AuthFailures)
		counter(descServerNAKs, s.NAKs)
	}
}

// readiness reports what keeps the appliance from being ready; empty means
// ready.
type readiness func() []string

// handler serves /metrics, /healthz (the process answers) and /readyz (the
// panel is up and the vault open; 503 with the reasons otherwise).
func (m *metrics) handler(ready readiness) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if why := ready(); len(why) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, strings.Join(why, "\n")+"\n")
			return
		}
		io.WriteString(w, "ok\n")
	})
	return mux
}

// listenMetrics opens the metrics listener, before privileges are dropped
// so that any port can be used.
func listenMetrics(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen: %w", err)
	}
	return ln, nil
}

// serveMetrics serves h on ln until ctx is done.
func serveMetrics(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		_ = wallclock.Within(context.Background(), 2*time.Second, srv.Shutdown)
	}()
	log.Info("serving metrics", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Error("metrics server stopped", "err", err)
	}
	<-stopped
}
