// Command testconsumer is a minimal consumer application for the kcl
// package's multi-process tests: it consumes a stream with a kcl.Worker and
// prints one line per user record to standard output,
//
//	<worker> <shard> <partition key> <sequence number> <sub-sequence number> <data>
//
// flushed before each batch is checkpointed (every batch, or every n-th of
// a shard with -checkpoint-every n), where <worker> is the -label (default
// the worker ID). Lines starting with "#" tell what happened to a shard:
//
//	# <worker> checkpoint <shard> <sequence number>/<sub-sequence number> ok|lost|failed
//	# <worker> init <shard> <checkpoint>
//	# <worker> lost <shard>
//
// SIGINT and SIGTERM shut it down gracefully. AWS clients come from the
// standard config chain (so the AWS_ENDPOINT_URL_* variables point it at
// emulators). With -fan-out it reads with enhanced fan-out (the consumer
// "testconsumer"), its Kinesis client speaking HTTP/2 without TLS to an
// http:// endpoint (the test proxy).
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/lease"
)

func main() {
	stream := flag.String("stream", "", "stream name or ARN")
	table := flag.String("table", "", "lease table")
	worker := flag.String("worker", "", "worker ID")
	label := flag.String("label", "", "name printed on each line (default the worker ID)")
	failover := flag.Duration("failover", 3*time.Second, "lease FailoverTime")
	every := flag.Int("checkpoint-every", 1, "checkpoint every n-th batch of a shard")
	fanOut := flag.Bool("fan-out", false, "read with enhanced fan-out instead of polling")
	flag.Parse()
	if *label == "" {
		*label = *worker
	}
	if err := run(*stream, *table, *worker, *label, *failover, *every, *fanOut); err != nil {
		fmt.Fprintln(os.Stderr, "testconsumer:", err)
		os.Exit(1)
	}
}

func run(stream, table, worker, label string, failover time.Duration, every int, fanOut bool) error {
	log, err := zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel))
	if err != nil {
		return err
	}
	p := &printer{out: bufio.NewWriter(os.Stdout), label: label, every: every, batches: map[string]int{}}
	cfg := kcl.Config{
		Stream: stream, App: "testconsumer", LeaseTable: table, WorkerID: worker,
		InitialPosition: checkpoint.TrimHorizon,
		Lease:           kcl.LeaseConfig{FailoverTime: failover},
		Retrieval:       kcl.RetrievalConfig{IdleWait: 200 * time.Millisecond},
		Logger:          log,
		Processor:       p,
	}
	if fanOut {
		cfg.Retrieval = kcl.RetrievalConfig{Mode: kcl.RetrievalFanOut}
		if cfg.Kinesis, err = h2cKinesisClient(); err != nil {
			return err
		}
	}
	w, err := kcl.New(cfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return w.Run(ctx)
}

// h2cKinesisClient is a Kinesis client from the standard config chain
// that speaks HTTP/2 without TLS, which SubscribeToShard needs against an
// http:// endpoint. Its retries are off, as in the clients the worker
// builds itself.
func h2cKinesisClient() (*kinesis.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, err
	}
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	return kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) {
		o.HTTPClient = &http.Client{Transport: &http.Transport{Protocols: protos}}
		o.Retryer = aws.NopRetryer{}
	}), nil
}

// printer prints the records and the lease events of every shard.
type printer struct {
	kcl.ProcessorFunc // the methods not defined below do nothing

	mu      sync.Mutex // out and batches are shared by the shards
	out     *bufio.Writer
	label   string
	every   int
	batches map[string]int
}

func (p *printer) ProcessRecords(ctx context.Context, b *kcl.Batch) error {
	p.mu.Lock()
	for _, r := range b.Records {
		fmt.Fprintf(p.out, "%s %s %s %s %d %s\n", p.label, r.ShardID, r.PartitionKey, r.SequenceNumber, r.SubSequenceNumber, r.Data)
	}
	err := p.out.Flush()
	p.batches[b.ShardID]++
	n := p.batches[b.ShardID]
	p.mu.Unlock()
	if err != nil || n%p.every != 0 {
		return err
	}
	err = b.Checkpoint(ctx)
	result := "ok"
	switch {
	case errors.Is(err, lease.ErrLeaseLost):
		result = "lost"
	case err != nil:
		result = "failed"
	}
	last := b.Records[len(b.Records)-1]
	p.event("checkpoint %s %s/%d %s", b.ShardID, last.SequenceNumber, last.SubSequenceNumber, result)
	return err
}

func (p *printer) Initialize(ctx context.Context, in *kcl.InitializeInput) error {
	p.event("init %s %s", in.ShardID, in.Checkpoint)
	return nil
}

// ShutdownRequested checkpoints what was processed: on a graceful
// shutdown, and when the lease is handed over to another worker.
func (p *printer) ShutdownRequested(ctx context.Context, in *kcl.ShutdownRequestedInput) error {
	return in.Checkpointer.CheckpointProcessed(ctx)
}

func (p *printer) LeaseLost(ctx context.Context, in *kcl.LeaseLostInput) {
	p.event("lost %s", in.ShardID)
}

func (p *printer) event(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.out, "# %s "+format+"\n", append([]any{p.label}, args...)...)
	_ = p.out.Flush()
}
