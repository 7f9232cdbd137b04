package kcl

import (
	"context"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
	"github.com/kinesisgo/kinesis/lease"
)

// container returns a KPL aggregated record of 100-byte user records, as
// large as fits in 50 KB (AWS's KPL's AggregationMaxSize is 51,200 bytes).
func container(tb testing.TB) ([]byte, int) {
	tb.Helper()
	var e aggregation.Encoder
	data := make([]byte, 100)
	for i := 0; ; i++ {
		r := aggregation.Record{PartitionKey: fmt.Sprintf("user-%05d", i), Data: data}
		if e.SizeWith(r) > 50*1024 {
			return e.Encode(), e.Len()
		}
		e.Add(r)
	}
}

// BenchmarkDeaggregate measures the worker's deaggregation path (container
// decoding with its MD5 check, sub-sequence numbering, Record building) on
// 100-byte user records in 50 KB containers, with and without the check of
// each user record's hash key against the shard's range (an MD5 of its
// partition key; the worker does it when the lease knows the range). One
// op is one container; user-records/s is per core (one goroutine).
func BenchmarkDeaggregate(b *testing.B) {
	c, n := container(b)
	recs := []types.Record{{
		SequenceNumber: aws.String("49590338271490256608559692538361571095921575989136588898"),
		PartitionKey:   aws.String("a"), Data: c, ApproximateArrivalTimestamp: aws.Time(time.Now()),
	}}
	// The lower half of the hash key space: the check hashes every key
	// (a shard holding the whole space contains every key unhashed).
	half, err := hashkey.ParseRange("0", "170141183460469231731687303715884105727")
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		rng  *hashkey.Range
	}{{"range-check", &half}, {"no-range-check", nil}} {
		b.Run(tc.name, func(b *testing.B) {
			d := &deaggregator{shardID: "shardId-000000000000", outside: func(int) {}, hashRange: tc.rng}
			var out []Record
			b.SetBytes(int64(len(c)))
			b.ReportAllocs()
			cpu := processCPU(b)
			for b.Loop() {
				out = d.appendRecords(out[:0], recs)
				if len(out) != n {
					b.Fatalf("got %d user records, want %d", len(out), n)
				}
			}
			b.ReportMetric(float64(n*b.N)/(processCPU(b)-cpu).Seconds(), "user-records/cpu-s")
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "user-records/s")
		})
	}
}

// processCPU returns the CPU time (user plus system) the process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWorkerPerRecord measures the worker's own cost per record: a
// worker with an in-memory lease table and an in-memory stream
// (kinesistest) reads b.N records from one shard and hands them to a
// processor that only counts them and checkpoints each batch. The
// per-shard call interval is lifted so that the CPU cost, not the Kinesis
// rate limit, is measured. The stream makes the records up as they are read
// (kinesistest.Stream.Synthetic); of the cost per plain record, about
// 120 ns and 145 bytes are the stream's (on a 2-core Xeon, where a plain
// record costs about 300 ns).
//
// The stream has one shard, which holds the whole hash key space, so user
// records are not hashed for the range check; "aggregated-2-shards" reads
// the same records from the first of two shards (the other is empty), whose
// range check hashes each distinct partition key of a container.
//
// ns/record is elapsed time; cpu-ns/record is the whole process's CPU time
// (the stream's reads, the worker's goroutines and the garbage collector
// on every core), the cost that a worker reading many shards pays per
// record.
func BenchmarkWorkerPerRecord(b *testing.B) {
	for _, tc := range []struct {
		name   string
		agg    bool
		shards int
	}{{"plain", false, 1}, {"aggregated", true, 1}, {"aggregated-2-shards", true, 2}} {
		agg := tc.agg
		b.Run(tc.name, func(b *testing.B) {
			fk := newStream(b, "s", tc.shards)
			const shard = "shardId-000000000000"
			data, records, total := make([]byte, 100), b.N, b.N
			if agg {
				c, n := container(b)
				data, records = c, (b.N+n-1)/n
				total = records * n
			}
			if err := fk.Synthetic(shard, records, data); err != nil {
				b.Fatal(err)
			}
			var count atomic.Int64
			done := make(chan struct{})
			w, err := New(Config{
				Stream: "s", App: "bench", Kinesis: fk, LeaseStore: lease.NewMemoryStore(),
				InitialPosition: checkpoint.TrimHorizon,
				Lease:           LeaseConfig{TakeInterval: 10 * time.Millisecond},
				Processor: ProcessorFunc(func(ctx context.Context, bt *Batch) error {
					if count.Add(int64(len(bt.Records))) == int64(total) {
						close(done)
					}
					return bt.Checkpoint(ctx)
				}),
			})
			if err != nil {
				b.Fatal(err)
			}
			w.cfg.Retrieval.CallInterval = 0 // measure CPU, not the 5 calls/s limit
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU(b)
			go func() { errc <- w.Run(ctx) }()
			select {
			case <-done:
			case <-time.After(5 * time.Minute):
				b.Fatalf("processed %d of %d records", count.Load(), total)
			}
			b.StopTimer()
			b.ReportMetric(float64(processCPU(b)-cpu)/float64(total), "cpu-ns/record")
			b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(total), "ns/record")
			cancel()
			if err := <-errc; err != nil {
				b.Fatal(err)
			}
		})
	}
}
