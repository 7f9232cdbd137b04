package kpl

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsRegistered(t *testing.T) {
	f := newStream(t, 1)
	reg := prometheus.NewRegistry()
	p := newProducer(t, f, Config{Metrics: reg})
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range families {
		names[mf.GetName()] = true
	}
	for _, want := range []string{
		"kinesis_kpl_user_records_put_total", "kinesis_kpl_user_records_failed_total", "kinesis_kpl_user_records_retried_total",
		"kinesis_kpl_user_records_expired_total", "kinesis_kpl_kinesis_records_put_total", "kinesis_kpl_requests_total",
		"kinesis_kpl_bytes_put_total", "kinesis_kpl_throttled_entries_total", "kinesis_kpl_buffered_time_seconds",
		"kinesis_kpl_inflight_requests", "kinesis_kpl_user_records_per_kinesis_record", "kinesis_kpl_buffered_records",
	} {
		if !names[want] {
			t.Errorf("metric %s not registered", want)
		}
	}
	// A second producer for the same stream on the same registry is refused
	// while the first is open.
	if _, err := New(Config{Stream: testStream, Kinesis: f, Metrics: reg}); err == nil {
		t.Fatal("second producer registered the same metrics")
	}
}
