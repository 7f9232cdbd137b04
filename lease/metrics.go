package lease

import (
	"errors"

	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
)

// coordinatorMetrics are the coordinator's Prometheus collectors. With a nil
// registerer they exist but are registered nowhere.
type coordinatorMetrics struct {
	held          prometheus.Gauge
	taken         prometheus.Counter
	stolen        prometheus.Counter
	lost          prometheus.Counter
	released      prometheus.Counter
	renewLatency  prometheus.Histogram
	storeErrors   *prometheus.CounterVec
	takerPasses   prometheus.Counter
	leasesInTable prometheus.Gauge
}

func newCoordinatorMetrics(reg prometheus.Registerer) *coordinatorMetrics {
	m := &coordinatorMetrics{
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kinesis_lease_held", Help: "Leases this worker holds.",
		}),
		taken: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_taken_total", Help: "Unowned or expired leases taken.",
		}),
		stolen: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_stolen_total", Help: "Leases taken from a live worker to balance the load.",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_lost_total", Help: "Held leases lost to another worker, deletion or a missed renewal.",
		}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_released_total", Help: "Held leases released on purpose.",
		}),
		renewLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kinesis_lease_renew_seconds", Help: "Latency of one lease renewal.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinesis_lease_store_errors_total", Help: "Failed lease table calls, by operation and kind (conflict, not_found, throttled, malformed, other).",
		}, []string{"op", "kind"}),
		takerPasses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_taker_passes_total", Help: "Taker passes (table scans) run.",
		}),
		leasesInTable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kinesis_lease_table_leases", Help: "Unfinished leases seen in the table at the last taker pass.",
		}),
	}
	if reg != nil {
		m.held = register(reg, m.held)
		m.taken = register(reg, m.taken)
		m.stolen = register(reg, m.stolen)
		m.lost = register(reg, m.lost)
		m.released = register(reg, m.released)
		m.renewLatency = register(reg, m.renewLatency)
		m.storeErrors = register(reg, m.storeErrors)
		m.takerPasses = register(reg, m.takerPasses)
		m.leasesInTable = register(reg, m.leasesInTable)
	}
	return m
}

// register registers c, or returns the collector already registered under
// the same name, so that several coordinators (or stores) of one process can
// share a registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
	}
	return c
}

// errorKind classifies a store error for the storeErrors metric.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case isThrottle(err):
		return "throttled"
	default:
		return "other"
	}
}

func isThrottle(err error) bool {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch api.ErrorCode() {
	case "ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded":
		return true
	}
	return false
}
