package kcl

import (
	"github.com/kinesisgo/kinesis/internal/metricreg"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the worker's Prometheus metrics, registered on
// Config.Metrics when it is set.
type metrics struct {
	millisBehind     *prometheus.GaugeVec
	records          prometheus.Counter
	bytes            prometheus.Counter
	processTime      prometheus.Histogram
	processErrors    prometheus.Counter
	skipped          prometheus.Counter
	shards           prometheus.Gauge
	getRecordsErrors *prometheus.CounterVec
	outsideHashRange prometheus.Counter
	shardsEnded      prometheus.Counter
	shardsExpired    prometheus.Counter
	leasesLost       prometheus.Counter
	checkpointErrors prometheus.Counter
	childLeaseErrors prometheus.Counter
	processorPanics  prometheus.Counter
	// compressedUndecoded counts compressed containers delivered as-is.
	compressedUndecoded prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	// Registration errors other than a collector already registered (which
	// is shared) leave the metric unregistered but working.
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
			Help: "Shards this worker holds a lease on and processes (or waits to process, until their parents end).",
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
		shardsExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_shards_expired_total",
			Help: "Closed shards that aged out of the stream's retention period before they were read to their end, checkpointed at SHARD_END so that their children start (not counted in kinesis_kcl_shards_ended_total).",
		}),
		leasesLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_leases_lost_total",
			Help: "Shards whose processing stopped because their lease was lost.",
		}),
		checkpointErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_checkpoint_errors_total",
			Help: "Failed writes of the worker itself to a lease it holds: the SHARD_END checkpoint, the child shards recorded in a parent (each attempt).",
		}),
		childLeaseErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_child_lease_errors_total",
			Help: "Failed attempts to create the leases of a closed shard's children.",
		}),
		compressedUndecoded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_compressed_records_undecoded_total",
			Help: "Records that start like a compressed container but were delivered as they are: corrupt, or expanding beyond aggregation.MaxExpansionRatio or MaxDecompressedSize.",
		}),
		processorPanics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_kcl_processor_panics_total",
			Help: "Processor calls that panicked (recovered, and handled as failures under OnProcessError).",
		}),
	}
	if reg == nil {
		return m
	}
	m.millisBehind = metricreg.Register(reg, m.millisBehind)
	m.records = metricreg.Register(reg, m.records)
	m.bytes = metricreg.Register(reg, m.bytes)
	m.processTime = metricreg.Register(reg, m.processTime)
	m.processErrors = metricreg.Register(reg, m.processErrors)
	m.skipped = metricreg.Register(reg, m.skipped)
	m.shards = metricreg.Register(reg, m.shards)
	m.getRecordsErrors = metricreg.Register(reg, m.getRecordsErrors)
	m.outsideHashRange = metricreg.Register(reg, m.outsideHashRange)
	m.shardsEnded = metricreg.Register(reg, m.shardsEnded)
	m.shardsExpired = metricreg.Register(reg, m.shardsExpired)
	m.leasesLost = metricreg.Register(reg, m.leasesLost)
	m.checkpointErrors = metricreg.Register(reg, m.checkpointErrors)
	m.childLeaseErrors = metricreg.Register(reg, m.childLeaseErrors)
	m.processorPanics = metricreg.Register(reg, m.processorPanics)
	m.compressedUndecoded = metricreg.Register(reg, m.compressedUndecoded)
	return m
}
