package kcl_test

import (
	"context"
	"math/big"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl"
)

// The tests of this file follow shards across resharding, retention and
// lease moves, through the proxy with ShardLifecycle on (see newEnv): on
// kinesis-mock alone, whose ListShards lists every shard for any filter
// and which never ages a shard out, the lineage defects they guard against
// do not show.

// TestIntegrationLatestCrashBeforeFirstRecord: a LATEST application whose
// only worker crashed before any record was written loses nothing written
// afterwards: the worker taking over reads from the time the lease was
// created (less the clock-skew margin), not from a new LATEST.
func TestIntegrationLatestCrashBeforeFirstRecord(t *testing.T) {
	e := newEnv(t, 2)
	cfg := e.config("worker-a")
	cfg.InitialPosition, cfg.AbortOnCancel = checkpoint.Latest, true
	a := e.start(cfg)
	e.waitBalanced(2)
	a.stop(t) // a crash: the leases stay owned, at LATEST
	p := &producer{client: e.kinesis, stream: e.stream}
	p.put(t, 40, 5)

	cfg = e.config("worker-b")
	cfg.InitialPosition = checkpoint.Latest
	e.start(cfg)
	wait.For(t, 2*e.failover+time.Minute, "every record written after the start", func() bool { return e.collector.distinct() >= p.total() })
	if dups := checkKeyOrder(t, e.collector.snapshot(), p.count); len(dups) > 0 {
		t.Errorf("%d records processed twice, first %+v", len(dups), dups[0])
	}
}

// TestIntegrationLatestStealBeforeFirstRecord: a LATEST lease moved by
// balancing before its first record loses nothing written while it moved.
// The new holder's first GetShardIterator is held until records have been
// written to every shard; a new LATEST iterator would start after them.
func TestIntegrationLatestStealBeforeFirstRecord(t *testing.T) {
	e := newEnv(t, 2)
	cfg := e.config("worker-a")
	cfg.InitialPosition = checkpoint.Latest
	e.start(cfg)
	e.waitBalanced(2)

	cfg = e.config("worker-b")
	cfg.InitialPosition = checkpoint.Latest
	gate := &iteratorGate{KinesisAPI: cfg.Kinesis, open: make(chan struct{})}
	cfg.Kinesis = gate
	e.start(cfg)
	e.waitBalanced(1, 1) // the stolen lease is no longer read by worker-a
	wait.For(t, 30*time.Second, "worker-b asking for its first shard iterator", func() bool { return gate.waiting.Load() > 0 })
	p := &producer{client: e.kinesis, stream: e.stream}
	p.put(t, 40, 5)
	close(gate.open)
	wait.For(t, time.Minute, "every record", func() bool { return e.collector.distinct() >= p.total() })
	if dups := checkKeyOrder(t, e.collector.snapshot(), p.count); len(dups) > 0 {
		t.Errorf("%d records processed twice, first %+v", len(dups), dups[0])
	}
	byWorker := map[string]int{}
	for _, d := range e.collector.snapshot() {
		byWorker[d.worker]++
	}
	if byWorker["worker-a"] == 0 || byWorker["worker-b"] == 0 {
		t.Errorf("records per worker %v, want both to have read a shard", byWorker)
	}
}

// iteratorGate holds every GetShardIterator call until open is closed.
type iteratorGate struct {
	kcl.KinesisAPI
	open    chan struct{}
	waiting atomic.Int32
}

func (g *iteratorGate) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	g.waiting.Add(1)
	select {
	case <-g.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.KinesisAPI.GetShardIterator(ctx, in, optFns...)
}

// TestIntegrationTrimHorizonSplitReadOnce: a TRIM_HORIZON application
// whose shard is split mid-stream reads every record once, parents before
// children per key, and goes on doing so for 20 shard syncs after the
// finished parent's lease was deleted: the syncs see the parent's children
// (ListShards without a filter lists closed shards), so they do not lease
// the parent again at TRIM_HORIZON.
func TestIntegrationTrimHorizonSplitReadOnce(t *testing.T) {
	e := newEnv(t, 1)
	cfg := e.config("worker-a")
	cfg.ShardSyncInterval = 250 * time.Millisecond
	syncs := &listCounter{KinesisAPI: cfg.Kinesis}
	cfg.Kinesis = syncs
	e.start(cfg)
	p := &producer{client: e.kinesis, stream: e.stream}
	p.put(t, 40, 3)
	wait.For(t, time.Minute, "the parent's records", func() bool { return e.collector.distinct() >= p.total() })

	parent := splitFirst(t, e)
	p.put(t, 40, 3)
	wait.For(t, time.Minute, "the parent's lease deleted once its children started", func() bool {
		ls, ok := e.readLeases()
		if !ok || len(ls) != 2 {
			return false
		}
		for _, l := range ls {
			if l.Key == parent || l.Checkpoint == string(checkpoint.TrimHorizon) {
				return false
			}
		}
		return true
	})
	from := syncs.unfiltered.Load()
	wait.For(t, time.Minute, "20 shard syncs after the cleanup", func() bool { return syncs.unfiltered.Load() >= from+20 })
	p.put(t, 40, 1)
	wait.For(t, time.Minute, "every record", func() bool { return e.collector.distinct() >= p.total() })
	if dups := checkKeyOrder(t, e.collector.snapshot(), p.count); len(dups) > 0 {
		t.Errorf("%d records processed twice, first %+v", len(dups), dups[0])
	}
	for _, l := range e.leases() {
		if l.Key == parent {
			t.Errorf("the finished parent was leased again, at %s", l.Checkpoint)
		}
	}
}

// listCounter counts the ListShards calls without a ShardFilter: the shard
// syncs'.
type listCounter struct {
	kcl.KinesisAPI
	unfiltered atomic.Int64
}

func (c *listCounter) ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if in.ShardFilter == nil && in.NextToken == nil {
		c.unfiltered.Add(1)
	}
	return c.KinesisAPI.ListShards(ctx, in, optFns...)
}

// TestIntegrationSplitThenMergeLaggingConsumer: a shard is split and its
// children merged again while the consumer lags behind (small batches, a
// slow processor): for every key the parent's records come before the
// children's, and theirs before the merge child's; every record is read.
func TestIntegrationSplitThenMergeLaggingConsumer(t *testing.T) {
	e := newEnv(t, 1)
	cfg := e.config("worker-a")
	cfg.Retrieval.MaxRecords = 10
	slow := cfg.Processor
	cfg.Processor = checkpointOnShutdown{kcl.ProcessorFunc(func(ctx context.Context, b *kcl.Batch) error {
		time.Sleep(20 * time.Millisecond) // a processor slower than the stream: the consumer lags
		return slow.ProcessRecords(ctx, b)
	})}
	e.start(cfg)
	p := &producer{client: e.kinesis, stream: e.stream}
	p.put(t, 30, 4)
	root := splitFirst(t, e)
	p.put(t, 30, 4)
	children := childrenOf(t, e, root)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.kinesis.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(e.stream),
		ShardToMerge: aws.String(children[0]), AdjacentShardToMerge: aws.String(children[1])}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitStreamActive(ctx, e.kinesis, e.stream); err != nil {
		t.Fatal(err)
	}
	p.put(t, 30, 4)
	t.Logf("%d of %d records read when the merge child was written to", e.collector.distinct(), p.total())
	wait.For(t, 2*time.Minute, "every record", func() bool { return e.collector.distinct() >= p.total() })
	checkKeyOrder(t, e.collector.snapshot(), p.count)
	shards := map[string]bool{}
	for _, d := range e.collector.snapshot() {
		shards[d.shard] = true
	}
	if len(shards) != 4 {
		t.Errorf("records from %d shards, want 4 (the root, two children, the merge child)", len(shards))
	}
}

// splitFirst splits the stream's first open shard in two halves and waits
// until the stream is active again; it returns the split shard's ID.
func splitFirst(t *testing.T, e *env) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := e.kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream),
		ShardFilter: &kintypes.ShardFilter{Type: kintypes.ShardFilterTypeAtLatest}})
	if err != nil {
		t.Fatal(err)
	}
	sh := out.Shards[0]
	start, _ := new(big.Int).SetString(*sh.HashKeyRange.StartingHashKey, 10)
	end, _ := new(big.Int).SetString(*sh.HashKeyRange.EndingHashKey, 10)
	mid := new(big.Int).Rsh(new(big.Int).Add(start, end), 1)
	if _, err := e.kinesis.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(e.stream),
		ShardToSplit: sh.ShardId, NewStartingHashKey: aws.String(mid.String())}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitStreamActive(ctx, e.kinesis, e.stream); err != nil {
		t.Fatal(err)
	}
	return *sh.ShardId
}

// childrenOf returns the children of a split shard, in hash key order.
func childrenOf(t *testing.T, e *env, parent string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := e.kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	var children []kintypes.Shard
	for _, sh := range out.Shards {
		if aws.ToString(sh.ParentShardId) == parent {
			children = append(children, sh)
		}
	}
	slices.SortFunc(children, func(a, b kintypes.Shard) int {
		x, _ := new(big.Int).SetString(*a.HashKeyRange.StartingHashKey, 10)
		y, _ := new(big.Int).SetString(*b.HashKeyRange.StartingHashKey, 10)
		return x.Cmp(y)
	})
	if len(children) != 2 {
		t.Fatalf("%s has %d children, want 2", parent, len(children))
	}
	return []string{*children[0].ShardId, *children[1].ShardId}
}
