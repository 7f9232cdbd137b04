package lanes

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kinesisgo/kinesis/internal/metricreg"
)

// metrics are the lanes' Prometheus metrics, registered on Config.Metrics
// when it is set. Every one is labelled by shard and lane; a shard's
// series are deleted when its processing ends.
type metrics struct {
	inFlight     *prometheus.GaugeVec
	batchRecords *prometheus.HistogramVec
	retries      *prometheus.CounterVec
	bisections   *prometheus.CounterVec
	destination  *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	handled      *prometheus.CounterVec
}

var labels = []string{"shard", "lane"}

func newMetrics(reg prometheus.Registerer) *metrics {
	return &metrics{
		inFlight: metricreg.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "kinesis_kcl_lane_records_in_flight",
			Help: "Records queued in the lane or being handled.",
		}, labels)),
		batchRecords: metricreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kinesis_kcl_lane_batch_records",
			Help:    "Records per Handler call.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8),
		}, labels)),
		retries: metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinesis_kcl_lane_retries_total",
			Help: "Handler calls that retried records after a failed call.",
		}, labels)),
		bisections: metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinesis_kcl_lane_bisections_total",
			Help: "Failed batches split in two (Bisect).",
		}, labels)),
		destination: metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinesis_kcl_lane_destination_records_total",
			Help: "Records given up on and stored by the failure destination, by reason.",
		}, append(labels, "reason"))),
		latency: metricreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kinesis_kcl_lane_handle_duration_seconds",
			Help:    "Time spent in one Handler call.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, labels)),
		handled: metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kinesis_kcl_lane_records_handled_total",
			Help: "Records for which a Handler call succeeded.",
		}, labels)),
	}
}

// laneMetrics are the series of one lane of one shard.
type laneMetrics struct {
	inFlight     prometheus.Gauge
	batchRecords prometheus.Observer
	retries      prometheus.Counter
	bisections   prometheus.Counter
	tooOld       prometheus.Counter
	exhausted    prometheus.Counter
	latency      prometheus.Observer
	handled      prometheus.Counter
}

func (m *metrics) lane(shard string, lane int) laneMetrics {
	l := strconv.Itoa(lane)
	return laneMetrics{
		inFlight:     m.inFlight.WithLabelValues(shard, l),
		batchRecords: m.batchRecords.WithLabelValues(shard, l),
		retries:      m.retries.WithLabelValues(shard, l),
		bisections:   m.bisections.WithLabelValues(shard, l),
		tooOld:       m.destination.WithLabelValues(shard, l, string(RecordTooOld)),
		exhausted:    m.destination.WithLabelValues(shard, l, string(RetriesExhausted)),
		latency:      m.latency.WithLabelValues(shard, l),
		handled:      m.handled.WithLabelValues(shard, l),
	}
}

// forget deletes the series of a shard.
func (m *metrics) forget(shard string) {
	match := prometheus.Labels{"shard": shard}
	m.inFlight.DeletePartialMatch(match)
	m.batchRecords.DeletePartialMatch(match)
	m.retries.DeletePartialMatch(match)
	m.bisections.DeletePartialMatch(match)
	m.destination.DeletePartialMatch(match)
	m.latency.DeletePartialMatch(match)
	m.handled.DeletePartialMatch(match)
}
