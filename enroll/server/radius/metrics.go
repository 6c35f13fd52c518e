package radius

import "github.com/prometheus/client_golang/prometheus"

// metrics are the listener's Prometheus metrics, registered in the core's
// registry.
type metrics struct {
	requests    *prometheus.CounterVec
	drops       *prometheus.CounterVec
	retransmits *prometheus.CounterVec
}

func newMetrics(clients []Client) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "totpserver_radius_requests_total",
			Help: "Access-Requests answered, by RADIUS client and result (accept, challenge, or why it was rejected).",
		}, []string{"client", "result"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "totpserver_radius_dropped_total",
			Help: "RADIUS requests dropped without an answer, by client (\"unknown\" for addresses of no client) and reason.",
		}, []string{"client", "reason"}),
		retransmits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "totpserver_radius_retransmits_total",
			Help: "Retransmitted Access-Requests answered from the reply cache, by RADIUS client.",
		}, []string{"client"}),
	}
	m.drops.WithLabelValues(unknownClient, dropUnknownClient)
	for _, c := range clients {
		for _, r := range allResults {
			m.requests.WithLabelValues(c.Name, r)
		}
		for _, d := range allDrops {
			m.drops.WithLabelValues(c.Name, d)
		}
		m.retransmits.WithLabelValues(c.Name)
	}
	return m
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.requests, m.drops, m.retransmits}
}

func (m *metrics) request(client, result string) { m.requests.WithLabelValues(client, result).Inc() }

func (m *metrics) dropped(client, reason string) { m.drops.WithLabelValues(client, reason).Inc() }

func (m *metrics) retransmit(client string) { m.retransmits.WithLabelValues(client).Inc() }
