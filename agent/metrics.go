package agent

import (
	"github.com/kinesisgo/kinesis/internal/metricreg"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the agent's Prometheus collectors, labelled by flow.
type metrics struct {
	sentRecords, sentBytes, failed, unparsed, dropped, truncated, split, headerLines, keyFallbacks, refused, invalidUTF8 *prometheus.CounterVec
	pending, files, behind                                                                                               *prometheus.GaugeVec
	unavailable                                                                                                          *prometheus.CounterVec // by flow and code
}

type flowMetrics struct {
	sentRecords, sentBytes, failed, unparsed, dropped, truncated, split, headerLines, keyFallbacks, refused, invalidUTF8 prometheus.Counter
	pending, files, behind                                                                                               prometheus.Gauge
	unavailable                                                                                                          func(code string) prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) *prometheus.CounterVec {
		return metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kinesis_agent_" + name, Help: help}, []string{"flow"}))
	}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return metricreg.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "kinesis_agent_" + name, Help: help}, []string{"flow"}))
	}
	return &metrics{
		sentRecords: counter("records_sent_total", "Records acknowledged by Kinesis."),
		sentBytes:   counter("bytes_sent_total", "Bytes of records acknowledged by Kinesis."),
		failed:      counter("record_failures_total", "Records the producer gave up on; each is put again."),
		unparsed:    counter("records_unparsed_total", "Records a CSVTOJSON or LOGTOJSON option could not parse."),
		dropped:     counter("records_dropped_total", "Unparsed records dropped (dropUnparsedRecords)."),
		truncated:   counter("records_truncated_total", "Records cut at maxRecordSizeBytes."),
		split:       counter("records_split_total", "Extra records made by splitting over-long lines."),
		headerLines: counter("header_lines_skipped_total", "Header lines skipped (skipHeaderLines)."),
		keyFallbacks: counter("partition_key_fallbacks_total",
			"Records without the partitionKeyField or a partitionKeyPattern match, sent with a random key."),
		refused: counter("files_refused_total",
			"Paths matching filePattern not followed: their file is outside the pattern's directory (followSymlinks allows it)."),
		invalidUTF8: counter("records_invalid_utf8_total", "Processed records in which invalid UTF-8 was replaced by U+FFFD."),
		pending:     gauge("records_pending", "Records read and not yet acknowledged."),
		files:       gauge("files_tracked", "Files followed."),
		behind:      gauge("bytes_behind", "Bytes in followed files not yet read."),
		unavailable: metricreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kinesis_agent_stream_unavailable_total",
			Help: "Pauses of a flow whose stream was not found or could not be written for lack of access (by error code); each lasts UnavailableBackoff."},
			[]string{"flow", "code"})),
	}
}

func (m *metrics) flow(id string) flowMetrics {
	return flowMetrics{
		sentRecords:  m.sentRecords.WithLabelValues(id),
		sentBytes:    m.sentBytes.WithLabelValues(id),
		failed:       m.failed.WithLabelValues(id),
		unparsed:     m.unparsed.WithLabelValues(id),
		dropped:      m.dropped.WithLabelValues(id),
		truncated:    m.truncated.WithLabelValues(id),
		split:        m.split.WithLabelValues(id),
		headerLines:  m.headerLines.WithLabelValues(id),
		keyFallbacks: m.keyFallbacks.WithLabelValues(id),
		refused:      m.refused.WithLabelValues(id),
		invalidUTF8:  m.invalidUTF8.WithLabelValues(id),
		pending:      m.pending.WithLabelValues(id),
		files:        m.files.WithLabelValues(id),
		behind:       m.behind.WithLabelValues(id),
		unavailable:  func(code string) prometheus.Counter { return m.unavailable.WithLabelValues(id, code) },
	}
}
