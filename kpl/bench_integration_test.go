package kpl_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/kpl"
)

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProducerSink puts records through the AWS SDK over HTTP into the
// proxy's sink mode without limits: the producer plus the SDK's request
// encoding (and, in the same process, the proxy answering). The client-side
// rate limit is raised out of the way (the sink has no limits to ride).
func BenchmarkProducerSink(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			px := proxy.StartForTest(b, proxy.Config{Sink: true, NoLimits: true})
			direct := testenv.KinesisClient(b)
			stream := testenv.CreateStream(b, direct, 4)
			p, err := kpl.New(kpl.Config{Stream: stream, Kinesis: testenv.KinesisClientAt(b, px.URL()), RateLimit: 1_000_000})
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var failed atomic.Int64
			cb := func(r kpl.Result) {
				if r.Err != nil {
					failed.Add(1)
				}
			}
			keys := make([]string, 4096)
			for i := range keys {
				keys[i] = fmt.Sprintf("partition-key-%08d", i)
			}
			data := make([]byte, size)
			// Warm up: shard map loaded, connections open.
			if _, err := p.PutSync(ctx, kpl.Record{PartitionKey: "warm", Data: data}); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU(b)
			for i := 0; i < b.N; i++ {
				if err := p.Put(ctx, kpl.Record{PartitionKey: keys[i&4095], Data: data}, cb); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu := processCPU(b) - cpu0
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			if err := p.Close(cctx); err != nil {
				b.Fatal(err)
			}
			if failed.Load() > 0 {
				b.Fatalf("%d records failed", failed.Load())
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
		})
	}
}

// BenchmarkShardUtilisation writes 100-byte records as fast as Put accepts
// them into a 1-shard stream through the proxy's sink with AWS's limits on,
// for 30 s per run, and reports the sustained user records/s, the bytes/s
// as a share of the shard's 1 MiB/s, and the share of entries throttled.
// Run it alone: go test -run '^$' -bench ShardUtilisation -benchtime 1x ./kpl/
func BenchmarkShardUtilisation(b *testing.B) {
	for _, rate := range []int{100, kpl.DefaultRateLimit} {
		b.Run(fmt.Sprintf("RateLimit%d", rate), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				shardUtilisation(b, rate, 30*time.Second)
			}
		})
	}
}

func shardUtilisation(b *testing.B, rateLimit int, d time.Duration) {
	px := proxy.StartForTest(b, proxy.Config{Sink: true})
	direct := testenv.KinesisClient(b)
	stream := testenv.CreateStream(b, direct, 1)
	p, err := kpl.New(kpl.Config{
		Stream: stream, Kinesis: testenv.KinesisClientAt(b, px.URL()), RateLimit: rateLimit,
		// A buffer of a few seconds' worth: Put blocks rather than records
		// waiting long enough to expire.
		MaxBufferedBytes: 4 << 20,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 100)
	var failed atomic.Int64
	cb := func(r kpl.Result) {
		if r.Err != nil {
			failed.Add(1)
		}
	}
	if _, err := p.PutSync(ctx, kpl.Record{PartitionKey: "warm", Data: data}); err != nil {
		b.Fatal(err)
	}
	// Measure from a steady state: one second in.
	warm, cancelWarm := context.WithTimeout(ctx, time.Second)
	put := 0
	for warm.Err() == nil {
		if err := p.Put(warm, kpl.Record{PartitionKey: fmt.Sprint(put), Data: data}, cb); err != nil && warm.Err() == nil {
			b.Fatal(err)
		}
		put++
	}
	cancelWarm()
	s0, t0 := px.Stats(), time.Now()
	run, cancelRun := context.WithTimeout(ctx, d)
	for run.Err() == nil {
		if err := p.Put(run, kpl.Record{PartitionKey: fmt.Sprint(put), Data: data}, cb); err != nil && run.Err() == nil {
			b.Fatal(err)
		}
		put++
	}
	cancelRun()
	s1, elapsed := px.Stats(), time.Since(t0)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := p.Close(cctx); err != nil {
		b.Fatal(err)
	}
	if failed.Load() > 0 {
		b.Fatalf("%d records failed", failed.Load())
	}
	users := float64(s1.UserRecords - s0.UserRecords)
	records := float64(s1.Records - s0.Records)
	// The limit counts data plus partition key; aggregated records carry
	// the one-byte key "a".
	bytes := float64(s1.Bytes-s0.Bytes) + records
	throttled := float64(s1.Throttled - s0.Throttled)
	b.ReportMetric(users/elapsed.Seconds(), "user-records/s")
	b.ReportMetric(bytes/elapsed.Seconds(), "bytes/s")
	b.ReportMetric(100*bytes/elapsed.Seconds()/kpl.ShardBytesPerSecond, "%-of-1MiB/s")
	b.ReportMetric(100*throttled/(records+throttled), "%-entries-throttled")
}
