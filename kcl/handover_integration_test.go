package kcl_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/internal/wait"
)

// TestIntegrationBalancingDeliversNoDuplicate: workers joining while
// records flow take their share by hand-over (the holder finishes its
// batch, checkpoints and hands the lease over), so that balancing, unlike a
// crash, delivers no record twice.
func TestIntegrationBalancingDeliversNoDuplicate(t *testing.T) {
	e := newEnv(t, 4)
	e.start(e.config("worker-a"))
	e.waitBalanced(4)
	p := &producer{client: e.kinesis, stream: e.stream, pause: 20 * time.Millisecond}
	var flow sync.WaitGroup
	flow.Add(1)
	go func() { defer flow.Done(); p.put(t, 40, 60) }() // records flow while the others join
	wait.For(t, 30*time.Second, "records flowing", func() bool { return e.collector.distinct() >= 200 })
	e.start(e.config("worker-b"))
	e.waitBalanced(2, 2)
	e.start(e.config("worker-c"))
	e.waitBalanced(1, 1, 2)
	flow.Wait()
	// On a loaded machine the flow can end before worker-c holds a lease:
	// records written once the three are balanced reach each of them.
	p.put(t, 40, 2)
	wait.For(t, time.Minute, "every record", func() bool { return e.collector.distinct() >= p.total() })
	got := e.collector.snapshot()
	if dups := checkKeyOrder(t, got, p.count); len(dups) > 0 {
		t.Errorf("%d records delivered twice without a crash, first %+v", len(dups), dups[0])
	}
	workers := map[string]int{}
	for _, d := range got {
		workers[d.worker]++
	}
	if len(workers) != 3 {
		t.Errorf("records by worker %v, want all three", workers)
	}
}

// TestIntegrationBalanceByThroughput: 8 shards, 2 of them written 10 times
// as fast as the others, 2 workers balanced 4 and 4 with both hot shards
// on one: once the workers have measured their shards' read rates (written
// to the leases at each renewal), the hot shards end on different workers,
// and stay there.
func TestIntegrationBalanceByThroughput(t *testing.T) {
	e := newEnv(t, 8)
	e.start(e.config("worker-a"))
	e.waitBalanced(8)
	e.start(e.config("worker-b"))
	e.waitBalanced(4, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := e.kinesis.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(e.stream)})
	if err != nil {
		t.Fatal(err)
	}
	start := map[string]string{} // shard -> its starting hash key
	for _, sh := range out.Shards {
		start[*sh.ShardId] = *sh.HashKeyRange.StartingHashKey
	}
	byOwner := map[string][]string{}
	for _, l := range e.leases() {
		byOwner[l.Owner] = append(byOwner[l.Owner], l.Key)
	}
	hot := byOwner["worker-a"][:2] // both on worker-a
	isHot := func(id string) bool { return slices.Contains(hot, id) }

	// 50 records/s to each hot shard, 5 to each other one, 100 bytes each.
	stop := make(chan struct{})
	var flow sync.WaitGroup
	flow.Add(1)
	go func() {
		defer flow.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var entries []kintypes.PutRecordsRequestEntry
			for id, key := range start {
				k := 0
				switch {
				case isHot(id):
					k = 5
				case n%2 == 0:
					k = 1 // every other tick
				}
				for range k {
					entries = append(entries, kintypes.PutRecordsRequestEntry{PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(key), Data: make([]byte, 100)})
				}
			}
			if _, err := e.kinesis.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries}); err != nil && ctx.Err() == nil {
				t.Logf("PutRecords: %v", err) // a lost tick only lowers a rate
			}
		}
	}()
	defer func() { close(stop); flow.Wait() }()

	owners := func() map[string]string {
		o := map[string]string{}
		for _, l := range e.leases() {
			o[l.Key] = l.Owner
		}
		return o
	}
	took := wait.For(t, time.Minute, "the hot shards on different workers", func() bool {
		o := owners()
		return o[hot[0]] != "" && o[hot[1]] != "" && o[hot[0]] != o[hot[1]]
	})
	t.Logf("hot shards %v split after %v", hot, took)
	// Settled: no hand-over in flight, each worker processing what the
	// table says it owns (the counts may differ from 4 and 4).
	wait.For(t, 30*time.Second, "no hand-over in flight", func() bool {
		byOwner := map[string][]string{}
		for _, l := range e.leases() {
			if l.CheckpointOwner != "" || l.Owner == "" {
				return false
			}
			byOwner[l.Owner] = append(byOwner[l.Owner], l.Key)
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		for id, r := range e.workers {
			keys := byOwner[id]
			slices.Sort(keys)
			if !slices.Equal(r.w.Shards(), keys) {
				return false
			}
		}
		return true
	})
	// The hot shards stay apart. (That nothing moves at all once settled,
	// with rates as measured, is TestBalanceByThroughput's, in package
	// lease; here the rates a loaded machine measures move a little.)
	if wait.Until(10*time.Second, func() bool {
		o := owners()
		return o[hot[0]] == o[hot[1]]
	}) {
		t.Errorf("the hot shards on one worker again: %v", owners())
	}
	var coldMax, hotMin float64 = 0, 1e18
	for _, l := range e.leases() {
		switch {
		case !l.ThroughputKnown:
			t.Errorf("lease %s has no measured throughput", l.Key)
		case isHot(l.Key):
			hotMin = min(hotMin, l.ThroughputKBps)
		default:
			coldMax = max(coldMax, l.ThroughputKBps)
		}
	}
	t.Logf("measured: hot shards at least %.2f KiB/s, the others at most %.2f", hotMin, coldMax)
	if hotMin <= coldMax {
		t.Errorf("hot shards measured at %.2f KiB/s or more, others at up to %.2f: want the hot ones faster", hotMin, coldMax)
	}
}
