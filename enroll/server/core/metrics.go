package core

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/totpbox/totpbox/enroll/proto"
	"github.com/totpbox/totpbox/enroll/server/appliance"
	"github.com/totpbox/totpbox/enroll/store"
)

// Verify results, the values of the "result" label of
// totpserver_verifies_total.
const (
	resultOK          = "ok"
	resultInvalid     = "invalid"
	resultReplay      = "replay"
	resultLocked      = "locked"
	resultRateLimited = "rate_limited"
	resultNoDevice    = "no_device"
	resultDisabled    = "disabled"
	resultUnknownUser = "unknown_user"
	resultError       = "error"
)

// metrics are the server's Prometheus metrics, in a registry of its own so
// that several servers can live in one process.
type metrics struct {
	reg *prometheus.Registry

	verifies          *prometheus.CounterVec
	lockouts          prometheus.Counter
	applianceRequests *prometheus.CounterVec
	offersSent        prometheus.Counter
	offerDelivery     prometheus.Histogram
	hookErrors        *prometheus.CounterVec
}

func newMetrics(s *Core) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		verifies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "totpserver_verifies_total",
			Help: "Codes checked (verify API and the sign-in code step), by result.",
		}, []string{"result"}),
		lockouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "totpserver_lockouts_total",
			Help: "MFA devices locked after too many failed codes.",
		}),
		applianceRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "totpserver_appliance_requests_total",
			Help: "Requests to the appliance API, by endpoint (pairing, changes, ack, other) and HTTP status code.",
		}, []string{"endpoint", "code"}),
		offersSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "totpserver_offers_sent_total",
			Help: "Registrations sent to an appliance from the console or the admin API.",
		}),
		offerDelivery: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "totpserver_offer_delivery_seconds",
			Help:    "Time from sending a registration to an appliance to answering the appliance's sync that carries it (one observation per delivered offer, on the replica that delivers it).",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
		hookErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "totpserver_appliance_hook_errors_total",
			Help: "MFA device changes (activate, rename, delete, expire) that could not be queued for appliances.",
		}, []string{"hook"}),
	}
	for _, r := range []string{resultOK, resultInvalid, resultReplay, resultLocked, resultRateLimited, resultNoDevice, resultDisabled, resultUnknownUser, resultError} {
		m.verifies.WithLabelValues(r)
	}
	for _, h := range []store.ChangeKind{store.ChangeActivate, store.ChangeRename, store.ChangeDelete, store.ChangeExpire} {
		m.hookErrors.WithLabelValues(string(h))
	}
	m.reg.MustRegister(m.verifies, m.lockouts, m.applianceRequests, m.offersSent, m.offerDelivery, m.hookErrors,
		&stateCollector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// MetricsHandler serves the server's Prometheus metrics. Handler does not
// include it, so metrics are never public by accident: serve it on a
// separate listener (totpserver's metrics.listen).
func (s *Core) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}})
}

// RegisterMetrics adds the metrics of a layer over the core (the RADIUS
// listener) to the registry MetricsHandler serves.
func (s *Core) RegisterMetrics(cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := s.metrics.reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// slogPrinter logs the metrics handler's errors.
type slogPrinter struct{ s *Core }

func (p slogPrinter) Println(v ...any) { p.s.log.Error("metrics", "err", fmt.Sprint(v...)) }

// verified counts one verify by its outcome.
func (m *metrics) verified(res VerifyResult, err error) {
	r := resultError
	switch {
	case err != nil:
		var f *Failure
		if errors.As(err, &f) && f.Status == http.StatusNotFound {
			r = resultUnknownUser
		}
	case res.OK:
		r = resultOK
	case res.RetryAfter > 0:
		r = resultRateLimited
	case res.Reason == ReasonInvalid:
		r = resultInvalid
	case res.Reason == ReasonReplay:
		r = resultReplay
	case res.Reason == ReasonNoDevice:
		r = resultNoDevice
	case res.Reason == ReasonDisabled:
		r = resultDisabled
	case strings.HasPrefix(res.Reason, ReasonLocked):
		r = resultLocked
	}
	m.verifies.WithLabelValues(r).Inc()
}

// stateCollector reads, at each scrape, what lives in the store: pending
// registrations and the appliances with their clocks.
type stateCollector struct{ s *Core }

var (
	descPending = prometheus.NewDesc("totpserver_pending_registrations",
		"MFA devices whose registration waits for its code (expired ones included until the janitor removes them).", nil, nil)
	descPaired = prometheus.NewDesc("totpserver_appliances_paired",
		"Paired appliances, those being unpaired included.", nil, nil)
	descOnline = prometheus.NewDesc("totpserver_appliances_online",
		"Appliances whose long-poll this server holds now.", nil, nil)
	descClockWarnings = prometheus.NewDesc("totpserver_appliances_clock_warning",
		"Appliances whose last clock report draws a warning (|offset| + bound near half a time step, or clock not synced).", nil, nil)
	descOffset = prometheus.NewDesc("totpserver_appliance_clock_offset_seconds",
		"The server's clock minus the appliance's, at its last clock report (network delay included).", []string{"appliance", "name"}, nil)
	descBound = prometheus.NewDesc("totpserver_appliance_clock_bound_seconds",
		"The error bound the appliance reported with its clock.", []string{"appliance", "name"}, nil)
	descLastSeen = prometheus.NewDesc("totpserver_appliance_last_seen_timestamp_seconds",
		"When the appliance last synced, Unix time.", []string{"appliance", "name"}, nil)
	descScrapeError = prometheus.NewDesc("totpserver_store_scrape_errors",
		"1 when this scrape could not read the store.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descPending, descPaired, descOnline, descClockWarnings, descOffset, descBound, descLastSeen, descScrapeError} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failed := 0.0
	if n, err := c.s.store.CountPending(ctx); err != nil {
		c.s.log.Error("metrics: count pending registrations", "err", err)
		failed = 1
	} else {
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(n))
	}
	list, err := c.s.appliances.Appliances(ctx)
	if err != nil {
		c.s.log.Error("metrics: list appliances", "err", err)
		failed = 1
	} else {
		online, warnings := 0, 0
		for _, a := range list {
			if a.Online {
				online++
			}
			if a.Warning != "" {
				warnings++
			}
			if a.Clock != nil {
				ch <- prometheus.MustNewConstMetric(descOffset, prometheus.GaugeValue, a.Clock.Offset.Seconds(), a.ID, a.Name)
				if !a.Clock.BoundUnknown {
					ch <- prometheus.MustNewConstMetric(descBound, prometheus.GaugeValue, a.Clock.Bound.Seconds(), a.ID, a.Name)
				}
			}
			if !a.LastSeen.IsZero() {
				ch <- prometheus.MustNewConstMetric(descLastSeen, prometheus.GaugeValue, float64(a.LastSeen.UnixNano())/1e9, a.ID, a.Name)
			}
		}
		ch <- prometheus.MustNewConstMetric(descPaired, prometheus.GaugeValue, float64(len(list)))
		ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, float64(online))
		ch <- prometheus.MustNewConstMetric(descClockWarnings, prometheus.GaugeValue, float64(warnings))
	}
	ch <- prometheus.MustNewConstMetric(descScrapeError, prometheus.GaugeValue, failed)
}

// CountApplianceRequests counts appliance API requests by endpoint and
// status. Offers are timed by the appliance API itself (OfferDelivered).
func (s *Core) CountApplianceRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := applianceEndpoint(r.URL.Path)
		sw := NewStatusWriter(w)
		h.ServeHTTP(sw, r)
		s.metrics.applianceRequests.WithLabelValues(endpoint, strconv.Itoa(sw.Status)).Inc()
	})
}

// OfferDelivered times an offer from the store to the appliance's sync
// that carries it, whichever replica sent it and whether the sync was held
// or new: the appliance API reports every delivery (appliance.Observer).
func (s *Core) OfferDelivered(d appliance.Delivery) {
	s.metrics.offerDelivery.Observe(max(d.Latency(), 0).Seconds())
}

func applianceEndpoint(path string) string {
	switch {
	case path == proto.PairingPath:
		return "pairing"
	case strings.HasSuffix(path, "/changes"):
		return "changes"
	case strings.HasSuffix(path, "/ack"):
		return "ack"
	case strings.HasSuffix(path, "/held"):
		return "held"
	}
	return "other"
}

// StatusWriter records the status a handler writes, for request counts
// and logs. Status starts at 200, what a handler that writes no header
// answers.
type StatusWriter struct {
	http.ResponseWriter
	Status int
}

// NewStatusWriter wraps w.
func NewStatusWriter(w http.ResponseWriter) *StatusWriter {
	return &StatusWriter{ResponseWriter: w, Status: http.StatusOK}
}

// WriteHeader records code and writes it.
func (w *StatusWriter) WriteHeader(code int) {
	w.Status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection, for the
// appliance API's long-polls.
func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
