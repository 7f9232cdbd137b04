package kpl

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the producer's Prometheus metrics, registered on
// Config.Metrics when it is set.
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	userRecords, failed, retried, expired   prometheus.Counter
	kinesisRecords, requests, requestErrors prometheus.Counter
	bytes, throttled, putBlocked            prometheus.Counter
	shardMapRefreshes, shardMapErrors       prometheus.Counter
	inflight                                prometheus.Gauge
	bufferedTime, aggregation               prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer, p *Producer) (*metrics, error) {
	labels := prometheus.Labels{"stream": p.stream.ShortName()}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "kinesis_kpl_" + name, Help: help, ConstLabels: labels})
	}
	m := &metrics{
		reg:               reg,
		userRecords:       counter("user_records_put_total", "User records written."),
		failed:            counter("user_records_failed_total", "User records that failed (expired, rejected or not sent before Close)."),
		retried:           counter("user_records_retried_total", "User record attempts that failed and were retried."),
		expired:           counter("user_records_expired_total", "User records that failed with ErrRecordExpired."),
		kinesisRecords:    counter("kinesis_records_put_total", "Kinesis records written (aggregated or single)."),
		requests:          counter("requests_total", "PutRecords requests made."),
		requestErrors:     counter("request_errors_total", "PutRecords requests that failed as a whole."),
		bytes:             counter("bytes_put_total", "Bytes written: Kinesis record data plus partition keys."),
		throttled:         counter("throttled_entries_total", "PutRecords entries throttled: failed with ProvisionedThroughputExceededException, or sent in a call refused for throttling."),
		putBlocked:        counter("put_blocked_total", "Put calls that found the buffer full."),
		shardMapRefreshes: counter("shard_map_refreshes_total", "Shard maps installed."),
		shardMapErrors:    counter("shard_map_errors_total", "Failed shard map loads."),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "kinesis_kpl_inflight_requests",
			Help: "PutRecords requests in flight.", ConstLabels: labels}),
		bufferedTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kinesis_kpl_buffered_time_seconds",
			Help: "Time from Put of a Kinesis record's oldest user record to its sending.", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		aggregation: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kinesis_kpl_user_records_per_kinesis_record",
			Help: "User records per Kinesis record written (the aggregation ratio).", ConstLabels: labels,
			Buckets: prometheus.ExponentialBuckets(1, 2, 14)}),
	}
	m.collectors = []prometheus.Collector{
		m.userRecords, m.failed, m.retried, m.expired, m.kinesisRecords, m.requests, m.requestErrors,
		m.bytes, m.throttled, m.putBlocked, m.shardMapRefreshes, m.shardMapErrors, m.inflight,
		m.bufferedTime, m.aggregation,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kinesis_kpl_buffered_records",
			Help: "User records put and not yet completed.", ConstLabels: labels},
			func() float64 { return float64(p.buffered()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kinesis_kpl_buffered_bytes",
			Help: "Bytes of the user records put and not yet completed, as MaxBufferedBytes counts them (data, partition key and a fixed per-record overhead).", ConstLabels: labels},
			func() float64 { return float64(p.bufBytes.Load()) }),
	}
	if reg == nil {
		return m, nil
	}
	for i, c := range m.collectors {
		if err := reg.Register(c); err != nil {
			for _, done := range m.collectors[:i] {
				reg.Unregister(done)
			}
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("kpl: metrics: another producer for stream %q is registered: %w", p.stream.ShortName(), err)
			}
			return nil, fmt.Errorf("kpl: metrics: %w", err)
		}
	}
	return m, nil
}

// unregister removes the metrics from the registerer (at Close), so that a
// new producer for the same stream can register its own.
func (m *metrics) unregister() {
	if m.reg == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
}
