package kpl

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/kinesistest"
)

// cpuTime returns the CPU time (user plus system) the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProducerFake measures the producer's own cost: user records/s
// put by one goroutine, or by GOMAXPROCS goroutines for "-parallel" (plus
// the producer's own goroutines), into an in-memory stream (kinesistest)
// of 256 shards that keeps nothing (enough shards that the per-shard rate
// limit is not what is measured: 100 B records at 1,000,000/s need about 100
// shards).
func BenchmarkProducerFake(b *testing.B) {
	for _, c := range []struct {
		size     int
		parallel bool
	}{{100, false}, {1024, false}, {100, true}} {
		size := c.size
		name := fmt.Sprintf("%dB", size)
		if c.parallel {
			name += "-parallel"
		}
		b.Run(name, func(b *testing.B) {
			f := newStreamOf(b, kinesistest.Config{StreamName: "bench", Shards: 256, Discard: true})
			p, err := New(Config{Stream: "bench", Kinesis: f})
			if err != nil {
				b.Fatal(err)
			}
			keys := make([]string, 4096)
			for i := range keys {
				keys[i] = fmt.Sprintf("partition-key-%08d", i)
			}
			data := make([]byte, size)
			var failed atomic.Int64
			cb := func(r Result) {
				if r.Err != nil {
					failed.Add(1)
				}
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			cpu0 := cpuTime(b)
			if c.parallel {
				// Put from GOMAXPROCS goroutines at once.
				var next atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					i := int(next.Add(1000))
					for pb.Next() {
						if err := p.Put(ctx, Record{PartitionKey: keys[i&4095], Data: data}, cb); err != nil {
							b.Error(err)
							return
						}
						i++
					}
				})
			} else {
				for i := 0; i < b.N; i++ {
					if err := p.Put(ctx, Record{PartitionKey: keys[i&4095], Data: data}, cb); err != nil {
						b.Fatal(err)
					}
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			cpu := cpuTime(b) - cpu0
			ctxC, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := p.Close(ctxC); err != nil {
				b.Fatal(err)
			}
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d records failed", n)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
			// Records per CPU-second of the whole process (Put callers,
			// dispatcher, senders, in-memory stream, GC): the per-core figure.
			b.ReportMetric(float64(b.N)/cpu.Seconds(), "records/cpu-s")
		})
	}
}
