package kinesistest_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/lease"
)

// A consumer's processor tested against an in-memory stream: records are
// written before a split, between the split and a merge, and after the
// merge; a kcl worker with an in-memory lease table reads every shard,
// each after its parents.
func Example() {
	s, err := kinesistest.New(kinesistest.Config{StreamName: "events"})
	if err != nil {
		fmt.Println(err)
		return
	}
	put := func(phase string) {
		for i := range 10 {
			if _, _, err := s.Put(fmt.Sprintf("%s-%d", phase, i), []byte(phase)); err != nil {
				fmt.Println(err)
			}
		}
	}
	put("before")
	left, right, err := s.Split("shardId-000000000000")
	if err != nil {
		fmt.Println(err)
		return
	}
	put("split")
	merged, err := s.Merge(left, right)
	if err != nil {
		fmt.Println(err)
		return
	}
	put("merged")

	var mu sync.Mutex
	counts := map[string]int{} // records by shard
	total := 0
	var batches []string // the shard of each batch, in processing order
	done := make(chan struct{})
	w, err := kcl.New(kcl.Config{
		Stream: "events", App: "example", Kinesis: s, LeaseStore: lease.NewMemoryStore(),
		InitialPosition:    checkpoint.TrimHorizon,
		Lease:              kcl.LeaseConfig{TakeInterval: 10 * time.Millisecond},
		Retrieval:          kcl.RetrievalConfig{IdleWait: 10 * time.Millisecond},
		ParentPollInterval: 10 * time.Millisecond,
		Processor: kcl.ProcessorFunc(func(ctx context.Context, b *kcl.Batch) error {
			mu.Lock()
			counts[b.ShardID] += len(b.Records)
			total += len(b.Records)
			batches = append(batches, b.ShardID)
			if total == 30 {
				close(done) // every record seen (a single worker sees each once)
			}
			mu.Unlock()
			return b.Checkpoint(ctx)
		}),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fmt.Println("timed out")
	}
	cancel()
	if err := <-ran; err != nil {
		fmt.Println(err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, shard := range slices.Sorted(maps.Keys(counts)) {
		fmt.Printf("%s: %d records\n", shard, counts[shard])
	}
	// Each shard's first batch comes after its parents' last.
	first := func(shard string) int { return slices.Index(batches, shard) }
	last := func(shard string) int {
		i := len(batches) - 1
		for i >= 0 && batches[i] != shard {
			i--
		}
		return i
	}
	fmt.Println("parents before children:",
		first(left) > last("shardId-000000000000") && first(right) > last("shardId-000000000000") &&
			first(merged) > max(last(left), last(right)))
	// Output:
	// shardId-000000000000: 10 records
	// shardId-000000000001: 5 records
	// shardId-000000000002: 5 records
	// shardId-000000000003: 10 records
	// parents before children: true
}
