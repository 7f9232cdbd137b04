package autoscale

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesisgo/kinesis/internal/metricreg"
)

// metrics are the scaler's Prometheus metrics (see the package
// documentation).
type metrics struct {
	decisions   *prometheus.CounterVec
	actions     *prometheus.CounterVec
	errors      prometheus.Counter
	utilization *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kinesis_autoscale_decisions_total",
			Help: "Evaluations of the stream, by the action decided (none, split, merge)."}, []string{"action"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kinesis_autoscale_actions_total",
			Help: "Resharding operations started, by action (split, merge)."}, []string{"action"}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "kinesis_autoscale_errors_total",
			Help: "Evaluations that failed."}),
		utilization: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kinesis_autoscale_shard_utilization",
			Help: "Each open shard's write demand as a share of its limit, at the last evaluation."}, []string{"shard"}),
	}
	m.decisions = metricreg.Register(reg, m.decisions)
	m.actions = metricreg.Register(reg, m.actions)
	m.errors = metricreg.Register(reg, m.errors)
	m.utilization = metricreg.Register(reg, m.utilization)
	return m
}

// observe records a decision and the utilisation of each shard it saw;
// shards no longer open are dropped.
func (m *metrics) observe(d Decision) {
	m.decisions.WithLabelValues(string(d.Action)).Inc()
	m.utilization.Reset()
	for _, u := range d.Shards {
		m.utilization.WithLabelValues(u.ShardID).Set(u.Utilization)
	}
}
