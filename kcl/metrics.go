package kcl

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the worker's Prometheus metrics, registered on
// Config.Metrics when it is set.
type metrics struct {
	millisBehind      *prometheus.GaugeVec
	records           prometheus.Counter
	bytes             prometheus.Counter
	processTime       prometheus.Histogram
	processErrors     prometheus.Counter
	skipped           prometheus.Counter
	shards            prometheus.Gauge
	getRecordsErrors  *prometheus.CounterVec
	outsideHashRange  prometheus.Counter
	shardsEnded       prometheus.Counter
	leasesLost        prometheus.Counter
	checkpointFailure prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		millisBehind: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kinesis_kcl_millis_behind_latest",
			Help: "How far behind the tip of the shard the last GetRecords was, in milliseconds.",
		}, []string{"shard"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_records_processed_total",
			Help: "User records for which ProcessRecords returned nil.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_bytes_processed_total",
			Help: "Payload bytes of the user records for which ProcessRecords returned nil.",
		}),
		processTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kinesis_kcl_process_duration_seconds",
			Help:    "Time spent in one ProcessRecords call.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}),
		processErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_process_errors_total",
			Help: "ProcessRecords calls that returned an error.",
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_records_skipped_total",
			Help: "User records skipped after ProcessRecords failed more than the allowed retries.",
		}),
		shards: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kinesis_kcl_leases_held",
			Help: "Shards whose lease this worker holds.",
		}),
		getRecordsErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinesis_kcl_get_records_errors_total",
			Help: "Failed GetRecords and GetShardIterator calls, by error kind.",
		}, []string{"kind"}),
		outsideHashRange: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_records_outside_shard_range_total",
			Help: "Aggregated user records whose hash key lies outside their shard's range (delivered anyway).",
		}),
		shardsEnded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_shards_ended_total",
			Help: "Shards processed to SHARD_END.",
		}),
		leasesLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_leases_lost_total",
			Help: "Shards whose processing stopped because their lease was lost.",
		}),
		checkpointFailure: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_checkpoint_errors_total",
			Help: "Checkpoints made by the worker itself (SHARD_END) that failed.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.millisBehind, m.records, m.bytes, m.processTime, m.processErrors,
		m.skipped, m.shards, m.getRecordsErrors, m.outsideHashRange, m.shardsEnded, m.leasesLost, m.checkpointFailure} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("kcl: metrics already registered (one registry per worker): %w", err)
			}
			return nil, fmt.Errorf("kcl: register metrics: %w", err)
		}
	}
	return m, nil
}
