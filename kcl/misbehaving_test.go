package kcl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
	"github.com/kinesisgo/kinesis/lease"
)

// TestWorkerRecoversProcessorPanic: a ProcessRecords that panics does not
// crash the process: the panic is counted and handled as a failure of the
// batch under OnProcessError (RetryForever: the batch comes again), and the
// shard goes on.
func TestWorkerRecoversProcessorPanic(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const shard = "shardId-000000000000"
	putTo(t, fk, shard, "k", []byte("poison"))
	var calls atomic.Int32
	r := &recorder{fail: func(context.Context, *Batch) error {
		if calls.Add(1) == 1 {
			panic("bad record")
		}
		return nil
	}}
	reg := prometheus.NewRegistry()
	cfg := unitConfig(t, fk, lease.NewMemoryStore(), r)
	cfg.Metrics = reg
	w, _ := startWorker(t, cfg)
	wait.For(t, 10*time.Second, "the batch processed after the panic", func() bool { return r.count() == 1 })
	if n := testutil.ToFloat64(w.met.processorPanics); n != 1 {
		t.Errorf("kinesis_kcl_processor_panics_total %v, want 1", n)
	}
	if n := testutil.ToFloat64(w.met.processErrors); n != 1 {
		t.Errorf("kinesis_kcl_process_errors_total %v, want 1", n)
	}
	err := (&shardWorker{w: w, log: w.log}).guard("ProcessRecords", func() error { panic("again") })
	if !errors.Is(err, ErrProcessorPanic) || !strings.Contains(err.Error(), "again") {
		t.Errorf("guard of a panicking call = %v, want ErrProcessorPanic naming the panic", err)
	}
}

// TestWorkerStuckProcessorReleasesLeases: a processor that ignores its
// cancelled context does not keep the worker, or its lease, forever. After
// ShutdownTimeout and AbortGrace, Run returns ErrProcessorStuck naming the
// shard, the lease is released, and it is renewed no more.
func TestWorkerStuckProcessorReleasesLeases(t *testing.T) {
	for _, abort := range []bool{false, true} {
		name := "graceful"
		if abort {
			name = "AbortOnCancel"
		}
		t.Run(name, func(t *testing.T) {
			fk := newStream(t, testStream, 1)
			const shard = "shardId-000000000000"
			putTo(t, fk, shard, "k", []byte("hangs"))
			stuck := make(chan struct{})
			unblock := make(chan struct{})
			r := &recorder{fail: func(context.Context, *Batch) error {
				close(stuck)
				<-unblock // ignores its context
				return nil
			}}
			store := lease.NewMemoryStore()
			cfg := unitConfig(t, fk, store, r)
			cfg.ShutdownTimeout, cfg.AbortOnCancel = 300*time.Millisecond, abort
			w, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			w.abortGrace = 200 * time.Millisecond
			t.Cleanup(func() {
				// The goroutine left behind ends with the test, and logs
				// on its way out: wait for it.
				close(unblock)
				w.shardWG.Wait()
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- w.Run(ctx) }()
			<-stuck
			cancel()
			select {
			case err = <-errc:
			case <-time.After(20 * time.Second):
				t.Fatal("Run did not return within 20s of cancellation")
			}
			if !errors.Is(err, ErrProcessorStuck) || !strings.Contains(err.Error(), shard) {
				t.Fatalf("Run = %v, want ErrProcessorStuck naming %s", err, shard)
			}
			l, err := store.Get(context.Background(), shard)
			if err != nil {
				t.Fatal(err)
			}
			if !abort && l.Owner != "" {
				t.Errorf("lease owned by %q after the shutdown, want released", l.Owner)
			}
			// No renewal any more: the lease stays as it is for well over
			// a renew interval (FailoverTime/3 = 300ms here).
			if wait.Until(time.Second, func() bool {
				now, err := store.Get(context.Background(), shard)
				return err == nil && now.Counter != l.Counter
			}) {
				t.Errorf("lease counter still moving after Run returned")
			}
		})
	}
}

// TestWorkerBoundsDecompressedBatches: data decompressed from compressed
// containers counts against Retrieval.PrefetchBytes (a batch is cut once it
// is reached), and a container that would expand beyond
// aggregation.MaxExpansionRatio is delivered as it is, and counted.
func TestWorkerBoundsDecompressedBatches(t *testing.T) {
	leakCheck(t)
	fk := newStream(t, testStream, 1)
	const shard = "shardId-000000000000"
	const perContainer = 20 * 100 // 20 user records of 100 bytes
	for c := range 5 {
		var enc aggregation.Encoder
		for i := range 20 {
			enc.Add(aggregation.Record{PartitionKey: fmt.Sprintf("k%d", i), Data: fmt.Appendf(nil, "%-100d", c*100+i)})
		}
		data, err := aggregation.Compress(nil, enc.Encode(), aggregation.Zstd)
		if err != nil {
			t.Fatal(err)
		}
		putTo(t, fk, shard, "k", data)
	}
	var bomb aggregation.Encoder
	bomb.Add(aggregation.Record{PartitionKey: "k", Data: make([]byte, 1<<20)})
	bombData, err := aggregation.Compress(nil, bomb.Encode(), aggregation.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	putTo(t, fk, shard, "k", bombData)

	var mu sync.Mutex
	var batches []int // decompressed bytes per batch
	r := &recorder{fail: func(_ context.Context, b *Batch) error {
		n := 0
		for _, rec := range b.Records {
			if rec.Aggregated {
				n += len(rec.Data)
			}
		}
		mu.Lock()
		batches = append(batches, n)
		mu.Unlock()
		return nil
	}}
	cfg := unitConfig(t, fk, lease.NewMemoryStore(), r)
	cfg.Retrieval.PrefetchBytes = 2 * perContainer
	w, _ := startWorker(t, cfg)
	wait.For(t, 10*time.Second, "every record", func() bool { return r.count() == 5*20+1 })
	mu.Lock()
	defer mu.Unlock()
	for i, n := range batches {
		if n > cfg.Retrieval.PrefetchBytes+perContainer {
			t.Errorf("batch %d holds %d decompressed bytes, want at most PrefetchBytes (%d) and one container", i, n, cfg.Retrieval.PrefetchBytes)
		}
	}
	if len(batches) < 3 {
		t.Errorf("%d batches (%v), want the 5 containers cut into at least 3", len(batches), batches)
	}
	got, _ := r.snapshot()
	last := got[len(got)-1]
	if last.Aggregated || !bytes.Equal(last.Data, bombData) {
		t.Errorf("the bomb was delivered as %d bytes (aggregated %v), want as it is (%d bytes)", len(last.Data), last.Aggregated, len(bombData))
	}
	if n := testutil.ToFloat64(w.met.compressedUndecoded); n != 1 {
		t.Errorf("kinesis_kcl_compressed_records_undecoded_total %v, want 1", n)
	}
}
