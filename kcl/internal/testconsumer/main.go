// Command testconsumer is a minimal consumer application for the kcl
// package's multi-process tests: it consumes a stream with a kcl.Worker and
// prints one line per user record to standard output,
//
//	<worker> <shard> <partition key> <sequence number> <sub-sequence number> <data>
//
// flushed before each batch is checkpointed (every batch, or every n-th of
// a shard with -checkpoint-every n). SIGINT and SIGTERM shut it down
// gracefully. AWS clients come from the standard config chain (so the
// AWS_ENDPOINT_URL_* variables point it at emulators).
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/kcl"
)

func main() {
	stream := flag.String("stream", "", "stream name or ARN")
	table := flag.String("table", "", "lease table")
	worker := flag.String("worker", "", "worker ID")
	failover := flag.Duration("failover", 3*time.Second, "lease FailoverTime")
	every := flag.Int("checkpoint-every", 1, "checkpoint every n-th batch of a shard")
	flag.Parse()
	if err := run(*stream, *table, *worker, *failover, *every); err != nil {
		fmt.Fprintln(os.Stderr, "testconsumer:", err)
		os.Exit(1)
	}
}

func run(stream, table, worker string, failover time.Duration, every int) error {
	log, err := zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel))
	if err != nil {
		return err
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex // out and batches are shared by the shards
	batches := map[string]int{}
	w, err := kcl.New(kcl.Config{
		Stream: stream, App: "testconsumer", LeaseTable: table, WorkerID: worker,
		InitialPosition: checkpoint.TrimHorizon,
		Lease:           kcl.LeaseConfig{FailoverTime: failover},
		Retrieval:       kcl.RetrievalConfig{IdleWait: 200 * time.Millisecond},
		Logger:          log,
		Processor: kcl.ProcessorFunc(func(ctx context.Context, b *kcl.Batch) error {
			mu.Lock()
			for _, r := range b.Records {
				fmt.Fprintf(out, "%s %s %s %s %d %s\n", worker, r.ShardID, r.PartitionKey, r.SequenceNumber, r.SubSequenceNumber, r.Data)
			}
			err := out.Flush()
			batches[b.ShardID]++
			n := batches[b.ShardID]
			mu.Unlock()
			if err != nil || n%every != 0 {
				return err
			}
			return b.Checkpoint(ctx)
		}),
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return w.Run(ctx)
}
