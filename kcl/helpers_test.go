package kcl

import (
	"context"
	"testing"

	"github.com/kinesisgo/kinesis/kinesistest"
)

// newStream returns an in-memory stream with the given name (the workers'
// Config.Stream) and n shards of equal hash key ranges.
func newStream(t testing.TB, name string, n int) *kinesistest.Stream {
	t.Helper()
	return newStreamOf(t, kinesistest.Config{StreamName: name, Shards: n})
}

// newStreamOf returns the in-memory stream of cfg.
func newStreamOf(t testing.TB, cfg kinesistest.Config) *kinesistest.Stream {
	t.Helper()
	s, err := kinesistest.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// onGetRecords returns a Config.Fault that fails the GetRecords calls for
// which fail returns an error; n is the number of earlier GetRecords calls
// (0 for the first).
func onGetRecords(fail func(n int) error) func(context.Context, kinesistest.Call) error {
	return func(_ context.Context, c kinesistest.Call) error {
		if c.Op != kinesistest.OpGetRecords {
			return nil
		}
		return fail(c.N)
	}
}

// put writes a record routed by its partition key and returns its shard
// and sequence number.
func put(t testing.TB, s *kinesistest.Stream, partitionKey string, data []byte) (shardID, seq string) {
	t.Helper()
	shardID, seq, err := s.Put(partitionKey, data)
	if err != nil {
		t.Fatal(err)
	}
	return shardID, seq
}

// putTo writes a record to an open shard and returns its sequence number.
func putTo(t testing.TB, s *kinesistest.Stream, shardID, partitionKey string, data []byte) string {
	t.Helper()
	seq, err := s.PutTo(shardID, partitionKey, data)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// split splits an open shard at the middle of its hash key range and
// returns the children, the lower half first.
func split(t testing.TB, s *kinesistest.Stream, shardID string) (left, right string) {
	t.Helper()
	left, right, err := s.Split(shardID)
	if err != nil {
		t.Fatal(err)
	}
	return left, right
}

// merge merges two adjacent open shards and returns the child.
func merge(t testing.TB, s *kinesistest.Stream, shardID, adjacentShardID string) string {
	t.Helper()
	child, err := s.Merge(shardID, adjacentShardID)
	if err != nil {
		t.Fatal(err)
	}
	return child
}
