package kcl_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/kcl"
)

// A consumer application: records of every shard the worker holds go to
// one function, which checkpoints after each batch. Clients come from the
// standard AWS config chain.
func Example() {
	w, err := kcl.New(kcl.Config{
		Stream:          "events",
		App:             "billing", // also the lease table's name
		InitialPosition: checkpoint.TrimHorizon,
		Processor: kcl.ProcessorFunc(func(ctx context.Context, b *kcl.Batch) error {
			for _, r := range b.Records {
				fmt.Printf("%s %s/%d %q\n", r.PartitionKey, r.SequenceNumber, r.SubSequenceNumber, r.Data)
			}
			return b.Checkpoint(ctx)
		}),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	// Ctrl-C hands the shards over to the other workers.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}

func ExampleConfig_Validate() {
	cfg := kcl.Config{Stream: "events", App: "billing"}
	fmt.Println(cfg.Validate())

	cfg.Processor = kcl.ProcessorFunc(func(context.Context, *kcl.Batch) error { return nil })
	cfg.Retrieval.CallInterval = 100 * time.Millisecond
	fmt.Println(cfg.Validate())
	// Output:
	// kcl: invalid config: one of Processor and NewProcessor is required
	// kcl: invalid config: Retrieval.CallInterval 100ms is below 200ms (Kinesis allows 5 GetRecords calls/s per shard)
}

func ExampleProcessorFunc() {
	p := kcl.ProcessorFunc(func(ctx context.Context, b *kcl.Batch) error {
		for _, r := range b.Records {
			fmt.Println(b.ShardID, r.PartitionKey, string(r.Data))
		}
		return nil
	})
	// The worker calls it with each batch of a shard; here, by hand.
	err := p.ProcessRecords(context.Background(), &kcl.Batch{
		ShardID: "shardId-000000000000",
		Records: []kcl.Record{{PartitionKey: "user-1", Data: []byte("hello")}, {PartitionKey: "user-2", Data: []byte("world")}},
	})
	fmt.Println(err)
	// Output:
	// shardId-000000000000 user-1 hello
	// shardId-000000000000 user-2 world
	// <nil>
}

// Reading with enhanced fan-out: the worker registers the consumer
// "billing" (the application's name) on first start, and each shard it
// holds is pushed to it at up to 2 MiB/s of its own. Validate checks the
// consumer name against AWS's pattern.
func ExampleRetrievalMode() {
	cfg := kcl.Config{
		Stream: "events", App: "billing",
		Processor: kcl.ProcessorFunc(func(context.Context, *kcl.Batch) error { return nil }),
		Retrieval: kcl.RetrievalConfig{Mode: kcl.RetrievalFanOut},
	}
	fmt.Println(cfg.Retrieval.Mode, cfg.Validate())

	cfg.Retrieval.ConsumerName = "billing reader"
	fmt.Println(cfg.Validate())
	// Output:
	// RetrievalFanOut <nil>
	// kcl: invalid config: Retrieval.ConsumerName "billing reader" is not 1 to 128 characters of a-z, A-Z, 0-9, _ . -
}
