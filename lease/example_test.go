package lease_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/lease"
)

// A worker takes the leases of a table, checkpoints one, and hands them all
// back on the way out.
func Example() {
	ctx := context.Background()
	store := lease.NewMemoryStore()
	for _, shard := range []string{"shardId-000000000000", "shardId-000000000001"} {
		if _, err := store.Create(ctx, lease.Lease{Key: shard, Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
			fmt.Println(err)
			return
		}
	}

	acquired := make(chan lease.Lease, 2)
	coord, err := lease.NewCoordinator(lease.Config{
		Store:      store,
		WorkerID:   "worker-1",
		OnAcquired: func(l lease.Lease) { acquired <- l },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- coord.Run(runCtx) }()

	var keys []string
	for range 2 {
		keys = append(keys, (<-acquired).Key)
	}
	slices.Sort(keys)
	fmt.Println("acquired", keys)

	// A fenced write: it fails with lease.ErrLeaseLost if the lease moved on.
	l, err := coord.Update(ctx, keys[0], func(l *lease.Lease) error {
		l.Checkpoint, l.CheckpointSubSequence = "49590338271490256608559692538361571095921575989136588801", 0
		return nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("checkpoint", l.Checkpoint)

	// Graceful shutdown: stop taking, release (others take them at their
	// next pass), then stop Run.
	if err := coord.ReleaseAll(ctx); err != nil {
		fmt.Println(err)
	}
	stop()
	<-done
	ls, _ := store.List(ctx)
	fmt.Printf("owners after release: %q %q\n", ls[0].Owner, ls[1].Owner)
	// Output:
	// acquired [shardId-000000000000 shardId-000000000001]
	// checkpoint 49590338271490256608559692538361571095921575989136588801
	// owners after release: "" ""
}

// A DynamoDB lease table and a shard syncer that keeps it in line with the
// stream.
func ExampleShardSyncer() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: dynamodb.NewFromConfig(cfg), Table: "billing"})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := store.EnsureTable(ctx); err != nil {
		fmt.Println(err)
		return
	}
	syncer, err := lease.NewShardSyncer(lease.ShardSyncConfig{
		Store:           store,
		Kinesis:         kinesis.NewFromConfig(cfg),
		Stream:          "events",
		InitialPosition: checkpoint.TrimHorizon,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = syncer.Run(ctx) // syncs now and every 60 s until ctx ends
}
