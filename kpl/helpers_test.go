package kpl

import (
	"context"
	"fmt"
	"testing"

	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// testStream is the stream name of newProducer's producers.
const testStream = "test"

// newStream returns an in-memory stream named testStream with n shards of
// equal hash key ranges.
func newStream(t testing.TB, n int) *kinesistest.Stream {
	t.Helper()
	return newStreamOf(t, kinesistest.Config{Shards: n})
}

// newStreamOf returns the in-memory stream of cfg, named testStream unless
// cfg names it.
func newStreamOf(t testing.TB, cfg kinesistest.Config) *kinesistest.Stream {
	t.Helper()
	if cfg.StreamName == "" && cfg.StreamARN == "" {
		cfg.StreamName = testStream
	}
	s, err := kinesistest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// faultOn returns a Config.Fault that calls fn, with the number of earlier
// calls of op, for the calls of op only.
func faultOn(op kinesistest.Op, fn func(n int) error) func(context.Context, kinesistest.Call) error {
	return func(_ context.Context, c kinesistest.Call) error {
		if c.Op != op {
			return nil
		}
		return fn(c.N)
	}
}

// shardFor returns the open shard of s that a record with these keys is
// written to.
func shardFor(t testing.TB, s *kinesistest.Stream, partitionKey, explicitHashKey string) string {
	t.Helper()
	id, err := s.ShardFor(partitionKey, explicitHashKey)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// describe renders a Kinesis record's data for test logs: the user records
// of an aggregated record as key=data, else the data.
func describe(data []byte) string {
	recs, ok := aggregation.Decode(data)
	if !ok {
		return string(data)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.PartitionKey+"="+string(r.Data))
	}
	return fmt.Sprint(out)
}

// testRec returns a record with the given key and data, put at put, as Put
// would make it.
func testRec(pk string, data []byte, put int64) userRec {
	r := userRec{pk: pk, data: data, key: recordKey(pk, "")}
	r.put, r.size = put, uint32(len(pk)+len(data))
	return r
}
