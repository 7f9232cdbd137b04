package kpl

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kinesistest"
)

func TestListShardsPaginates(t *testing.T) {
	f := newStreamOf(t, kinesistest.Config{Shards: 5, ListShardsPageSize: 2})
	p := newProducer(t, f, Config{})
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	if n := len(p.shards.Load().shards); n != 5 {
		t.Fatalf("%d shards in the map, want 5", n)
	}
	lists := f.ListShardsInputs()
	if len(lists) < 3 {
		t.Fatalf("%d ListShards calls, want 3 pages", len(lists))
	}
	first := lists[0]
	if first.ShardFilter == nil || first.ShardFilter.Type != types.ShardFilterTypeAtLatest || aws.ToString(first.StreamName) != testStream {
		t.Fatalf("first page input %+v", first)
	}
	for _, in := range lists[1:3] {
		if in.NextToken == nil || in.StreamName != nil || in.ShardFilter != nil {
			t.Fatalf("later page input %+v", in)
		}
	}
}

// A shard map that fails to load is retried after MinBackoff, doubling with
// each failure; records put meanwhile wait for it, then go out.
func TestShardMapRetriedWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newStreamOf(t, kinesistest.Config{Shards: 2, Fault: faultOn(kinesistest.OpListShards, func(call int) error {
			if call < 3 {
				return &smithy.GenericAPIError{Code: "LimitExceededException", Message: "slow down", Fault: smithy.FaultClient}
			}
			return nil
		})})
		reg := prometheus.NewRegistry()
		p := newProducer(t, f, Config{Metrics: reg, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
		// Records put before any shard map wait for it, then go out.
		start := time.Now()
		res := putMany(t, p, 100, randomKey)
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != (1+2+4)*time.Millisecond {
			t.Fatalf("shard map loaded after %v, want 1+2+4 ms of backoff", d)
		}
		res.wait(t, time.Second)
		checkExactlyOnce(t, f, 100, randomKey)
		if got := testutil.ToFloat64(p.metrics.shardMapErrors); got != 3 {
			t.Fatalf("shard map errors %v, want 3", got)
		}
	})
}

// Records put while the shard map cannot be loaded because of an error that
// retrying will not fix (no such stream, access denied) fail at once with
// that error, not RecordTTL later with a bare ErrRecordExpired.
func TestShardMapNonRetryableErrorFailsRecords(t *testing.T) {
	f := newStreamOf(t, kinesistest.Config{Fault: faultOn(kinesistest.OpListShards, func(int) error {
		return &types.ResourceNotFoundException{Message: aws.String("no stream")}
	})})
	p := newProducer(t, f, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.PutSync(ctx, Record{PartitionKey: "k", Data: []byte("d")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("PutSync: err = %v, want the ResourceNotFoundException", err)
	}
}

// Records that expire while the shard map cannot be loaded say why.
func TestShardMapRetryableErrorExplainsExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newStreamOf(t, kinesistest.Config{Fault: faultOn(kinesistest.OpListShards, func(int) error { return serverError() })})
		p := newProducer(t, f, Config{RecordTTL: 100 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
		start := time.Now()
		_, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
		var ae interface{ ErrorCode() string }
		if !errors.Is(err, ErrRecordExpired) || !errors.As(err, &ae) || ae.ErrorCode() != "InternalFailure" {
			t.Fatalf("PutSync: err = %v, want ErrRecordExpired wrapping the ListShards error", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("record expired after %v, want RecordTTL (100ms)", d)
		}
	})
}

func TestRecordTTLWithoutShardMap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// ListShards never gives a usable map.
		f := newStreamOf(t, kinesistest.Config{Fault: faultOn(kinesistest.OpListShards, func(int) error { return kinesistest.LimitExceeded() })})
		p := newProducer(t, f, Config{RecordTTL: 100 * time.Millisecond})
		start := time.Now()
		_, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
		if !errors.Is(err, ErrRecordExpired) {
			t.Fatalf("err = %v", err)
		}
		if d := time.Since(start); d != 100*time.Millisecond {
			t.Fatalf("record expired after %v, want RecordTTL (100ms)", d)
		}
	})
}

func TestReshardRefreshesShardMap(t *testing.T) {
	f := newStream(t, 1)
	p := newProducer(t, f, Config{RecordMaxBufferedTime: time.Millisecond, MinBackoff: time.Millisecond})
	res := putMany(t, p, 200, randomKey)
	res.wait(t, 5*time.Second)
	// Split: two children replace the shard.
	if _, _, err := f.Split("shardId-000000000000"); err != nil {
		t.Fatal(err)
	}
	keyOf := func(i int) string { return randomKey(i + 200) }
	wait.For(t, 10*time.Second, "the shard map refreshed after the split", func() bool {
		res := putMany(t, p, 200, keyOf)
		res.wait(t, 5*time.Second)
		m := p.shards.Load()
		return len(m.shards) == 2 && m.shards[0].id == "shardId-000000000001"
	})
	// Now predictions match: aggregated records hold only their shard's keys.
	before := f.UserRecords()
	res = putMany(t, p, 500, keyOf)
	res.wait(t, 5*time.Second)
	after := f.UserRecords()
	seen := map[string]bool{}
	for _, u := range before {
		seen[string(u.Data)+u.SequenceNumber] = true
	}
	n := 0
	for _, u := range after {
		if seen[string(u.Data)+u.SequenceNumber] {
			continue
		}
		n++
		if want := shardFor(t, f, u.PartitionKey, ""); want != u.ShardID {
			t.Fatalf("after refresh: %s on %s, key maps to %s", u.Data, u.ShardID, want)
		}
	}
	if n != 500 {
		t.Fatalf("%d new records, want 500", n)
	}
}
