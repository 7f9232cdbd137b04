package checkpoint_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/lease"
)

func Example() {
	ctx := context.Background()
	store := lease.NewMemoryStore()
	_, _ = store.Create(ctx, lease.Lease{Key: "shardId-000000000000", Checkpoint: lease.TrimHorizon})

	coord, _ := lease.NewCoordinator(lease.Config{Store: store, WorkerID: "worker-1"})
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = coord.Run(runCtx) }()
	defer func() { stop(); <-done }()
	var held lease.Lease
	for ok := false; !ok; _, ok = coord.Lease("shardId-000000000000") {
		time.Sleep(10 * time.Millisecond)
	}
	held, _ = coord.Lease("shardId-000000000000")

	cp := checkpoint.New(coord, held)
	cp.Delivered(checkpoint.SequenceNumber{Sequence: "49590338271490256608559692538361571095921575989136588801", SubSequence: 2})
	if err := cp.Checkpoint(ctx, "49590338271490256608559692538361571095921575989136588801", 2); err != nil {
		fmt.Println(err)
	}
	fmt.Println(cp.Last())
	// Output: 49590338271490256608559692538361571095921575989136588801/2
}
