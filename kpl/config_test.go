package kpl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{},
		{Stream: "s", CollectionMaxCount: 501},
		{Stream: "s", CollectionMaxSize: 6 << 20},
		{Stream: "s", AggregationMaxSize: 1 << 20},
		{Stream: "s", MaxRecordSize: 11 << 20},
		{Stream: "s", RateLimit: -1},
		{Stream: "s", MinBackoff: time.Second, MaxBackoff: time.Millisecond},
		{Stream: "s", Compression: aggregation.Compression(7)},
		{Stream: "s", MaxBufferedBytes: 10},
		{Stream: "s", RecordTTL: -1},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", c)
		}
	}
	for _, arn := range []string{"arn:aws:kinesis:us-east-1:123456789012:table/t", "arn:aws:s3:::bucket", "arn:aws:kinesis:us-east-1:123456789012:stream/"} {
		if err := (Config{Stream: arn}).Validate(); err == nil || !strings.Contains(err.Error(), "Config.Stream") {
			t.Errorf("Validate with Stream %q = %v, want an error naming Config.Stream", arn, err)
		}
	}
	for _, stream := range []string{"s", "arn:aws:kinesis:us-east-1:123456789012:stream/s"} {
		if err := (Config{Stream: stream}).Validate(); err != nil {
			t.Fatal(err)
		}
	}
	d := Config{Stream: "s"}.withDefaults()
	if d.AggregationMaxSize != 51200 || d.CollectionMaxCount != 500 || d.CollectionMaxSize != 5<<20 ||
		d.RecordMaxBufferedTime != 100*time.Millisecond || d.RecordTTL != 30*time.Second || d.RateLimit != 150 || d.MaxConnections != 24 {
		t.Fatalf("defaults: %+v", d)
	}
}

// MaxRecordSize is documented to go up to 10 MiB for streams whose maximum
// record size was raised; Kinesis then takes requests as large as the record
// (10 MiB), so a record over 5 MiB must be accepted and sent.
func TestRecordsOverFiveMiB(t *testing.T) {
	const size = 6 << 20
	if err := (Config{Stream: "s", MaxRecordSize: size}).Validate(); err != nil {
		t.Fatalf("Validate with MaxRecordSize %d: %v", size, err)
	}
	if err := (Config{Stream: "s", MaxRecordSize: size, CollectionMaxSize: size + 1}).Validate(); err == nil {
		t.Fatal("Validate accepted CollectionMaxSize above MaxRecordSize over 5 MiB")
	}
	if err := (Config{Stream: "s", CollectionMaxSize: MaxRequestSize + 1}).Validate(); err == nil {
		t.Fatal("Validate accepted CollectionMaxSize above 5 MiB with the default MaxRecordSize")
	}
	f := newStreamOf(t, kinesistest.Config{MaxRecordSize: size})
	p := newProducer(t, f, Config{MaxRecordSize: size, MaxBufferedBytes: 4 * size})
	res := newResults(2)
	for _, id := range []string{"big-1", "big-2"} {
		if err := p.Put(context.Background(), Record{PartitionKey: id, Data: make([]byte, size-10)}, res.callback(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	for id, r := range res.byID {
		if r.Err != nil {
			t.Fatalf("%s: %v", id, r.Err)
		}
	}
	if calls := f.Calls(kinesistest.OpPutRecords); calls != 2 {
		t.Fatalf("%d PutRecords calls for two records over 5 MiB, want one each", calls)
	}
}
