package lease

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/metricreg"
)

// coordinatorMetrics are the coordinator's Prometheus collectors. With a nil
// registerer they exist but are registered nowhere.
type coordinatorMetrics struct {
	held              prometheus.Gauge
	taken             prometheus.Counter
	stolen            prometheus.Counter
	lost              prometheus.Counter
	duplicateWorkerID prometheus.Counter
	released          prometheus.Counter
	handedOver        prometheus.Counter
	handOverForced    prometheus.Counter
	renewLatency      prometheus.Histogram
	storeErrors       *prometheus.CounterVec
	takerPasses       prometheus.Counter
	leasesInTable     prometheus.Gauge
	leader            prometheus.Gauge
	assigned          prometheus.Counter
	heartbeatErrors   prometheus.Counter
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
			Name: "kinesis_lease_stolen_total", Help: "Leases asked of a live worker to balance the load (hand-overs started).",
		}),
		lost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_lost_total", Help: "Held leases lost to another worker, deletion or a missed renewal.",
		}),
		duplicateWorkerID: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_duplicate_worker_id_total", Help: "Held leases lost to another process running with this worker's WorkerID (the counter moved without a write of ours).",
		}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_released_total", Help: "Held leases released on purpose.",
		}),
		handedOver: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_handed_over_total", Help: "Held leases handed over to the worker that asked for them, after their last checkpoint.",
		}),
		handOverForced: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_hand_over_forced_total", Help: "Leases handed over to this worker that it took without the holder's hand-over (not finished within FailoverTime).",
		}),
		renewLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kinesis_lease_renew_seconds", Help: "Latency of one lease renewal.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinesis_lease_store_errors_total", Help: "Failed lease table calls, by operation and kind: conflict, not_found, malformed, throttled, or else the AWS error code, http_STATUS, timeout, canceled or network.",
		}, []string{"op", "kind"}),
		takerPasses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_taker_passes_total", Help: "Poll passes run (reads or renewals of the leader item).",
		}),
		leasesInTable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kinesis_lease_table_leases", Help: "Unfinished leases seen in the table at the leader's last scan (on the leader).",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kinesis_lease_leader", Help: "1 while this worker leads the fleet (scans the lease table and assigns leases), else 0.",
		}),
		assigned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_assigned_total", Help: "Free or expired leases this worker, as the leader, assigned to another worker.",
		}),
		heartbeatErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_heartbeat_errors_total", Help: "Heartbeats to the worker metrics table that failed.",
		}),
	}
	if reg != nil {
		m.held = metricreg.Register(reg, m.held)
		m.taken = metricreg.Register(reg, m.taken)
		m.stolen = metricreg.Register(reg, m.stolen)
		m.lost = metricreg.Register(reg, m.lost)
		m.duplicateWorkerID = metricreg.Register(reg, m.duplicateWorkerID)
		m.released = metricreg.Register(reg, m.released)
		m.handedOver = metricreg.Register(reg, m.handedOver)
		m.handOverForced = metricreg.Register(reg, m.handOverForced)
		m.renewLatency = metricreg.Register(reg, m.renewLatency)
		m.storeErrors = metricreg.Register(reg, m.storeErrors)
		m.takerPasses = metricreg.Register(reg, m.takerPasses)
		m.leasesInTable = metricreg.Register(reg, m.leasesInTable)
		m.leader = metricreg.Register(reg, m.leader)
		m.assigned = metricreg.Register(reg, m.assigned)
		m.heartbeatErrors = metricreg.Register(reg, m.heartbeatErrors)
	}
	return m
}

// errorKind names a store error for the storeErrors metric: the lease
// kinds (a failed condition, a missing lease, a malformed item), throttling
// as awserr classifies it, and otherwise awserr.Kind (the AWS error code,
// "http_STATUS", "timeout", "canceled" or "network"): a small, bounded set.
func errorKind(err error) string {
	switch {
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrMalformed):
		return "malformed"
	case awserr.IsThrottling(err):
		return "throttled"
	default:
		return awserr.Kind(err)
	}
}
