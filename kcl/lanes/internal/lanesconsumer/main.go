// Command lanesconsumer is a consumer application for the lanes package's
// crash tests: a kcl.Worker whose shards are processed by lanes, printing
// one line per record handled to standard output,
//
//	<shard> <partition key> <sequence number> <sub-sequence number> <data>
//
// written before the Handler returns (so before the record can be
// checkpointed). Records whose data ends with -poison-suffix fail every
// call; they go to the JSON-lines file -dest after -max-retries retries.
// SIGINT and SIGTERM shut it down gracefully. AWS clients come from the
// standard config chain (so the AWS_ENDPOINT_URL_* variables point it at
// emulators).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kcl/lanes"
)

func main() {
	var o options
	flag.StringVar(&o.stream, "stream", "", "stream name or ARN")
	flag.StringVar(&o.table, "table", "", "lease table")
	flag.StringVar(&o.worker, "worker", "", "worker ID")
	flag.DurationVar(&o.failover, "failover", 3*time.Second, "lease FailoverTime")
	flag.IntVar(&o.parallelism, "parallelism", 10, "lanes per shard")
	flag.IntVar(&o.batchSize, "batch-size", 10, "records per Handler call")
	flag.DurationVar(&o.sleep, "sleep", 5*time.Millisecond, "time each Handler call takes")
	flag.StringVar(&o.poison, "poison-suffix", "", "records whose data ends with this always fail")
	flag.IntVar(&o.maxRetries, "max-retries", lanes.NoRetries, "lanes MaxRetries")
	flag.StringVar(&o.dest, "dest", "", "JSON-lines failure destination file")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "lanesconsumer:", err)
		os.Exit(1)
	}
}

type options struct {
	stream, table, worker, poison, dest string
	failover, sleep                     time.Duration
	parallelism, batchSize, maxRetries  int
}

func run(o options) error {
	log, err := zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel))
	if err != nil {
		return err
	}
	dest, err := lanes.OpenFile(o.dest)
	if err != nil {
		return err
	}
	defer dest.Close()
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	f, err := lanes.New(lanes.Config{
		Parallelism: o.parallelism, BatchSize: o.batchSize, MaxRetries: o.maxRetries, Destination: dest,
		RetryBackoffBase: time.Millisecond, RetryBackoffMax: 10 * time.Millisecond,
		Logger: log.WithOptions(zap.IncreaseLevel(zap.DPanicLevel)), // not one line per record given up on
		Handler: lanes.HandlerFunc(func(ctx context.Context, b *lanes.Batch) error {
			time.Sleep(o.sleep)
			mu.Lock()
			defer mu.Unlock()
			for i, r := range b.Records {
				if o.poison != "" && strings.HasSuffix(string(r.Data), o.poison) {
					if err := out.Flush(); err != nil {
						return err
					}
					return lanes.FailedFrom(i, errors.New("poison record"))
				}
				fmt.Fprintf(out, "%s %s %s %d %s\n", r.ShardID, r.PartitionKey, r.SequenceNumber, r.SubSequenceNumber, r.Data)
			}
			return out.Flush()
		}),
	})
	if err != nil {
		return err
	}
	w, err := kcl.New(kcl.Config{
		Stream: o.stream, App: "lanesconsumer", LeaseTable: o.table, WorkerID: o.worker,
		InitialPosition: checkpoint.TrimHorizon,
		Lease:           kcl.LeaseConfig{FailoverTime: o.failover},
		Retrieval:       kcl.RetrievalConfig{IdleWait: 200 * time.Millisecond},
		Logger:          log,
		NewProcessor:    f.NewProcessor,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return w.Run(ctx)
}
