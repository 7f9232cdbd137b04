// Command kinesis-demo-consumer is a small kcl consumer: it shares a
// stream's shards with the other workers of its application and appends the
// data of every record it consumes, one line per record, to a file.
//
//	kinesis-demo-consumer -stream events -app demo -out consumed.txt
//
// Each batch is written and flushed to the file before it is checkpointed,
// so after a crash the file holds every record up to the checkpoint (and
// perhaps some after it, which the next owner of the shard consumes again):
// counting the distinct lines of the files of all workers shows whether
// anything was lost. The file is created readable by its owner only
// (0600), as it holds the payloads. make demo runs three of these; it is
// also a template for a real consumer.
//
// The AWS configuration is the standard one (AWS_REGION, AWS_PROFILE,
// AWS_ENDPOINT_URL, ...). SIGINT or SIGTERM shuts the worker down
// gracefully: it checkpoints and releases its leases so the other workers
// take them at once.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/kcl"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kinesis-demo-consumer:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		stream   = flag.String("stream", "", "stream to consume (required)")
		app      = flag.String("app", "", "application name; names the lease table (required)")
		out      = flag.String("out", "", "file to append one line per consumed record to (required)")
		status   = flag.String("status", "", "file to rewrite every 500ms with this worker's status as JSON (optional)")
		workerID = flag.String("worker-id", "", "worker ID in the lease table (default: host, PID and a random suffix)")
		failover = flag.Duration("failover", 10*time.Second, "lease failover time: how long a dead worker's leases stay unowned")
		from     = flag.String("from", "TRIM_HORIZON", "initial position for shards without a checkpoint: TRIM_HORIZON or LATEST")
	)
	flag.Parse()
	if *stream == "" || *app == "" || *out == "" {
		flag.Usage()
		return errors.New("-stream, -app and -out are required")
	}
	var pos checkpoint.Position
	switch *from {
	case "TRIM_HORIZON":
		pos = checkpoint.TrimHorizon
	case "LATEST":
		pos = checkpoint.Latest
	default:
		return fmt.Errorf("-from %q: want TRIM_HORIZON or LATEST", *from)
	}

	f, err := os.OpenFile(*out, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	log, err := zap.NewProduction()
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // stderr

	p := &processor{w: bufio.NewWriter(f), behind: map[string]int64{}}
	w, err := kcl.New(kcl.Config{
		Stream:          *stream,
		App:             *app,
		WorkerID:        *workerID,
		Processor:       p,
		InitialPosition: pos,
		Lease:           kcl.LeaseConfig{FailoverTime: *failover},
		Logger:          log,
	})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var wg sync.WaitGroup
	if *status != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.reportStatus(ctx, *status, w.WorkerID(), log)
		}()
	}
	log.Info("consuming", zap.String("stream", *stream), zap.String("app", *app), zap.String("worker", w.WorkerID()))
	err = w.Run(ctx) // graceful shutdown when ctx is cancelled
	stop()
	wg.Wait()
	return err
}

// processor writes records to one file for every shard of the worker.
type processor struct {
	mu      sync.Mutex
	w       *bufio.Writer
	records int64
	behind  map[string]int64 // MillisBehindLatest of each shard being processed
}

func (p *processor) Initialize(_ context.Context, in *kcl.InitializeInput) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.behind[in.ShardID] = 0
	return nil
}

// ProcessRecords writes the batch, flushes it to the file, then
// checkpoints: a record is in the file before its checkpoint is.
func (p *processor) ProcessRecords(ctx context.Context, b *kcl.Batch) error {
	p.mu.Lock()
	for _, r := range b.Records {
		data := r.Data
		if n := len(data); n > 0 && data[n-1] == '\n' {
			data = data[:n-1]
		}
		p.w.Write(data)
		p.w.WriteByte('\n')
	}
	err := p.w.Flush()
	if err == nil {
		p.records += int64(len(b.Records))
		p.behind[b.ShardID] = b.MillisBehindLatest
	}
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("write records: %w", err) // retried by the worker
	}
	return b.Checkpoint(ctx)
}

func (p *processor) LeaseLost(_ context.Context, in *kcl.LeaseLostInput) { p.drop(in.ShardID) }

func (p *processor) ShardEnded(_ context.Context, in *kcl.ShardEndedInput) error {
	p.drop(in.ShardID)
	return nil
}

func (p *processor) ShutdownRequested(ctx context.Context, in *kcl.ShutdownRequestedInput) error {
	p.drop(in.ShardID)
	return nil // every batch was checkpointed as it was written
}

func (p *processor) drop(shard string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.behind, shard)
}

// Status is what the status file holds.
type Status struct {
	Worker  string           `json:"worker"`
	PID     int              `json:"pid"`
	Records int64            `json:"records"`
	Shards  []string         `json:"shards"`
	Behind  map[string]int64 `json:"millisBehindLatest"`
	Updated time.Time        `json:"updated"`
}

// reportStatus rewrites the status file (atomically) every 500ms until ctx
// ends.
func (p *processor) reportStatus(ctx context.Context, path, worker string, log *zap.Logger) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		s := Status{Worker: worker, PID: os.Getpid(), Records: p.records, Behind: map[string]int64{}, Updated: time.Now().UTC()}
		for id, ms := range p.behind {
			s.Shards = append(s.Shards, id)
			s.Behind[id] = ms
		}
		p.mu.Unlock()
		sort.Strings(s.Shards)
		if err := writeJSON(path, s); err != nil {
			log.Warn("writing status file", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".status-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}
