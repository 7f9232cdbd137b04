package lanes_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/kcl/lanes"
	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/lease"
)

// cpuTime returns the CPU time the process used so far (user and system).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkLanesThroughput measures the records per second of one shard
// whose processing takes 10 ms per batch of 10 records (a database call,
// say): a plain kcl processor working through each delivered batch 10
// records at a time ("no-lanes"), and lanes with Parallelism 1 and 10 and
// BatchSize 10. One op is one record of 100 keys, read from an in-memory
// stream with an in-memory lease table. records/s counts from the first
// record handled to the last; cpu-µs/record is the whole process's CPU
// time (user and system) per record. Run with a fixed count, such as
// -benchtime=3000x, so that every variant handles the same records.
func BenchmarkLanesThroughput(b *testing.B) {
	const perBatch, work = 10, 10 * time.Millisecond
	for _, tc := range []struct {
		name        string
		parallelism int // 0: no lanes
	}{{"no-lanes", 0}, {"parallelism-1", 1}, {"parallelism-10", 10}} {
		b.Run(tc.name, func(b *testing.B) {
			stream, err := kinesistest.New(kinesistest.Config{StreamName: "s", Shards: 1})
			if err != nil {
				b.Fatal(err)
			}
			for i := range b.N {
				if _, _, err := stream.Put(fmt.Sprintf("key-%03d", i%100), make([]byte, 100)); err != nil {
					b.Fatal(err)
				}
			}
			var count atomic.Int64
			var firstAt time.Time
			var once sync.Once
			done := make(chan struct{})
			handled := func(n int) {
				once.Do(func() { firstAt = time.Now() })
				if count.Add(int64(n)) == int64(b.N) {
					close(done)
				}
			}
			cfg := kcl.Config{
				Stream: "s", App: "bench", Kinesis: stream, LeaseStore: lease.NewMemoryStore(),
				InitialPosition: checkpoint.TrimHorizon,
				Lease:           kcl.LeaseConfig{TakeInterval: 10 * time.Millisecond},
			}
			if tc.parallelism == 0 {
				cfg.Processor = kcl.ProcessorFunc(func(ctx context.Context, bt *kcl.Batch) error {
					for i := 0; i < len(bt.Records); i += perBatch {
						time.Sleep(work)
						handled(min(perBatch, len(bt.Records)-i))
					}
					return bt.Checkpoint(ctx)
				})
			} else {
				f, err := lanes.New(lanes.Config{
					Parallelism: tc.parallelism, BatchSize: perBatch,
					Handler: lanes.HandlerFunc(func(ctx context.Context, bt *lanes.Batch) error {
						time.Sleep(work)
						handled(len(bt.Records))
						return nil
					}),
				})
				if err != nil {
					b.Fatal(err)
				}
				cfg.NewProcessor = f.NewProcessor
			}
			w, err := kcl.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			cpu := cpuTime(b)
			b.ResetTimer()
			go func() { errc <- w.Run(ctx) }()
			select {
			case <-done:
			case <-time.After(10 * time.Minute):
				b.Fatalf("handled %d of %d records", count.Load(), b.N)
			}
			b.StopTimer()
			elapsed := time.Since(firstAt)
			cpu = cpuTime(b) - cpu
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/record")
		})
	}
}
