package kcl

// The poller's tests run in synctest bubbles: the in-memory stream does no
// I/O, so waits (call interval, idle wait, backoff) take no real time and are
// measured exactly.

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/streamref"
	"github.com/kinesisgo/kinesis/kinesistest"
)

func testMetrics(t *testing.T) *metrics {
	t.Helper()
	return newMetrics(nil)
}

func fastRetrieval() RetrievalConfig {
	return RetrievalConfig{MaxRecords: 10, IdleWait: 10 * time.Millisecond, CallInterval: time.Millisecond,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, PrefetchBytes: 1 << 20}.withDefaults()
}

// streamNamed is a stream given by name.
func streamNamed(t *testing.T, s string) streamref.Ref {
	t.Helper()
	r, err := streamref.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const shard0 = "shardId-000000000000"

// newTestPoller reads shard0 of fk (a stream named "s") with cfg from
// start.
func newTestPoller(t *testing.T, fk *kinesistest.Stream, start types.ShardIteratorType, cfg RetrievalConfig, m *metrics) *poller {
	return newPoller(fk, streamNamed(t, "s"), shard0, startPosition{kind: start}, cfg, zap.NewNop(), m)
}

// collect runs a poller until the shard ends (or the deadline) and returns
// the sequence numbers delivered.
func collect(t *testing.T, p *poller) ([]string, fetched) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out := make(chan fetched)
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx, out) }()
	defer func() { cancel(); <-done }()
	var seqs []string
	var last fetched
	for f := range out {
		for _, r := range f.records {
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
		}
		p.done(f.seqNo)
		last = f
		if f.end {
			return seqs, last
		}
	}
	t.Fatalf("poller stopped before the shard ended: %v", ctx.Err())
	return nil, last
}

func TestPollerReadsClosedShardToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStream(t, "s", 1)
		var want []string
		for i := range 35 {
			want = append(want, putTo(t, fk, shard0, "k", []byte{byte(i)}))
		}
		a, b := split(t, fk, shard0)
		got, last := collect(t, newTestPoller(t, fk, types.ShardIteratorTypeTrimHorizon, fastRetrieval(), testMetrics(t)))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("read %v\nwant %v", got, want)
		}
		if len(last.children) != 2 || aws.ToString(last.children[0].ShardId) != a || aws.ToString(last.children[1].ShardId) != b {
			t.Fatalf("children at shard end = %+v, want %s and %s", last.children, a, b)
		}
	})
}

func TestPollerRenewsExpiredIteratorAfterLastRecord(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStreamOf(t, kinesistest.Config{StreamName: "s", Fault: onGetRecords(func(n int) error {
			if n == 1 { // after the first batch of 10
				return &types.ExpiredIteratorException{Message: aws.String("expired")}
			}
			return nil
		})})
		var want []string
		for i := range 25 {
			want = append(want, putTo(t, fk, shard0, "k", []byte{byte(i)}))
		}
		split(t, fk, shard0)
		m := testMetrics(t)
		got, _ := collect(t, newTestPoller(t, fk, types.ShardIteratorTypeTrimHorizon, fastRetrieval(), m))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("read %v\nwant %v", got, want)
		}
		if n := fk.IteratorCalls(types.ShardIteratorTypeAfterSequenceNumber); n != 1 {
			t.Fatalf("AFTER_SEQUENCE_NUMBER iterators = %d, want 1", n)
		}
		if v := testutil.ToFloat64(m.getRecordsErrors.WithLabelValues("ExpiredIteratorException")); v != 1 {
			t.Fatalf("expired-iterator errors counted = %v, want 1", v)
		}
	})
}

// Throttled reads are retried with the same iterator, no sooner than the
// call interval (the backoff here is shorter).
func TestPollerBacksOffOnThrottlingWithinCallRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStreamOf(t, kinesistest.Config{StreamName: "s", Fault: onGetRecords(func(n int) error {
			if n < 3 {
				return &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
			}
			return nil
		})})
		want := []string{putTo(t, fk, shard0, "k", []byte("x"))}
		split(t, fk, shard0)
		cfg := fastRetrieval()
		cfg.CallInterval = DefaultCallInterval
		m := testMetrics(t)
		got, _ := collect(t, newTestPoller(t, fk, types.ShardIteratorTypeTrimHorizon, cfg, m))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("read %v, want %v", got, want)
		}
		if v := testutil.ToFloat64(m.getRecordsErrors.WithLabelValues("ProvisionedThroughputExceededException")); v != 3 {
			t.Fatalf("throttling errors counted = %v, want 3", v)
		}
		ts := fk.GetRecordsTimes(shard0)
		if len(ts) != 4 {
			t.Fatalf("GetRecords calls = %d, want 4", len(ts))
		}
		for i := 1; i < len(ts); i++ {
			if gap := ts[i].Sub(ts[i-1]); gap != cfg.CallInterval {
				t.Errorf("calls %d and %d %v apart, want the call interval %v (the backoff is shorter)", i-1, i, gap, cfg.CallInterval)
			}
		}
		// The same iterator is reused after throttling: one iterator only.
		if n := fk.IteratorCalls(types.ShardIteratorTypeTrimHorizon); n != 1 {
			t.Fatalf("iterators requested = %d, want 1", n)
		}
	})
}

// Consecutive failures wait a random time below a ceiling that doubles from
// BackoffBase up to BackoffMax, and never less than the call interval.
func TestPollerBackoffBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failures = 8
		fk := newStreamOf(t, kinesistest.Config{StreamName: "s", Fault: onGetRecords(func(n int) error {
			if n < failures {
				return &smithy.GenericAPIError{Code: "InternalFailure", Message: "injected", Fault: smithy.FaultServer}
			}
			return nil
		})})
		putTo(t, fk, shard0, "k", []byte("x"))
		split(t, fk, shard0)
		cfg := fastRetrieval()
		cfg.CallInterval, cfg.BackoffBase, cfg.BackoffMax = DefaultCallInterval, 400*time.Millisecond, 1600*time.Millisecond
		collect(t, newTestPoller(t, fk, types.ShardIteratorTypeTrimHorizon, cfg, testMetrics(t)))
		ts := fk.GetRecordsTimes(shard0)
		if len(ts) != failures+1 {
			t.Fatalf("GetRecords calls = %d, want %d", len(ts), failures+1)
		}
		for i := 1; i < len(ts); i++ {
			ceiling := min(cfg.BackoffBase<<(i-1), cfg.BackoffMax)
			if gap := ts[i].Sub(ts[i-1]); gap < cfg.CallInterval || gap > max(ceiling, cfg.CallInterval) {
				t.Errorf("wait after failure %d = %v, want within [%v, %v]", i, gap, cfg.CallInterval, max(ceiling, cfg.CallInterval))
			}
		}
	})
}

func TestPollerIdleWaitBetweenEmptyReads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStream(t, "s", 1)
		cfg := fastRetrieval()
		cfg.CallInterval, cfg.IdleWait = DefaultCallInterval, DefaultIdleWait
		p := newTestPoller(t, fk, types.ShardIteratorTypeLatest, cfg, testMetrics(t))
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan fetched)
		done := make(chan struct{})
		go func() { defer close(done); p.run(ctx, out) }()
		time.Sleep(2*cfg.IdleWait + time.Millisecond)
		synctest.Wait()
		if n := len(fk.GetRecordsTimes(shard0)); n != 3 {
			t.Fatalf("empty reads within two idle waits = %d, want 3", n)
		}
		seq := putTo(t, fk, shard0, "k", []byte("late"))
		f := <-out
		cancel()
		<-done
		if len(f.records) != 1 || aws.ToString(f.records[0].SequenceNumber) != seq {
			t.Fatalf("got %+v, want the one record written after LATEST", f.records)
		}
		ts := fk.GetRecordsTimes(shard0)
		for i := 1; i < len(ts); i++ {
			if gap := ts[i].Sub(ts[i-1]); gap != cfg.IdleWait {
				t.Errorf("empty reads %d and %d %v apart, want the idle wait %v", i-1, i, gap, cfg.IdleWait)
			}
		}
	})
}

func TestPollerPrefetchBoundedByBytes(t *testing.T) {
	for _, tc := range []struct {
		name          string
		prefetchBytes int
		wantAhead     bool
	}{{"small batches prefetch", 1 << 20, true}, {"large batch waits", 5, false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fk := newStream(t, "s", 1)
				for range 30 {
					putTo(t, fk, shard0, "k", []byte("0123456789"))
				}
				cfg := fastRetrieval()
				cfg.PrefetchBytes = tc.prefetchBytes
				p := newTestPoller(t, fk, types.ShardIteratorTypeTrimHorizon, cfg, testMetrics(t))
				ctx, cancel := context.WithCancel(context.Background())
				out := make(chan fetched)
				done := make(chan struct{})
				go func() { defer close(done); p.run(ctx, out) }()
				defer func() { cancel(); <-done }()
				first := <-out // not done yet
				time.Sleep(time.Second)
				synctest.Wait() // the poller waits with the next batch in hand, or for the first to be done
				calls := len(fk.GetRecordsTimes(shard0))
				if tc.wantAhead {
					if calls != 2 {
						t.Fatalf("GetRecords calls while a small batch is processed = %d, want 2 (one fetched ahead)", calls)
					}
					return
				}
				if calls != 1 {
					t.Fatalf("GetRecords calls while a large batch is processed = %d, want 1", calls)
				}
				p.done(first.seqNo)
				time.Sleep(time.Second)
				synctest.Wait()
				if calls := len(fk.GetRecordsTimes(shard0)); calls != 2 {
					t.Fatalf("GetRecords calls after the large batch is done = %d, want 2", calls)
				}
			})
		})
	}
}

// Errors that a repeated call does not cure get a fresh iterator from the
// last record read; transient ones keep the iterator. Every failure counts
// under its kind.
func TestPollerIteratorAfterErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		err   error
		fresh bool
	}{
		{"throttling", &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}, false},
		{"service fault", &smithy.GenericAPIError{Code: "InternalFailure", Message: "injected", Fault: smithy.FaultServer}, false},
		{"network", errors.New("connection reset by peer"), false},
		{"invalid argument", &types.InvalidArgumentException{Message: aws.String("bad iterator")}, true},
		{"unknown client error", &smithy.GenericAPIError{Code: "SomethingUnexpected", Message: "odd"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fk := newStreamOf(t, kinesistest.Config{StreamName: "s", Fault: onGetRecords(func(n int) error {
					if n == 1 || n == 2 { // after the first batch of 10
						return tc.err
					}
					return nil
				})})
				var want []string
				for i := range 15 {
					want = append(want, putTo(t, fk, shard0, "k", []byte{byte(i)}))
				}
				split(t, fk, shard0)
				m := testMetrics(t)
				got, _ := collect(t, newTestPoller(t, fk, types.ShardIteratorTypeTrimHorizon, fastRetrieval(), m))
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("read %v\nwant %v", got, want)
				}
				if v := testutil.ToFloat64(m.getRecordsErrors.WithLabelValues(awserr.Kind(tc.err))); v != 2 {
					t.Errorf("errors counted under %q = %v, want 2", awserr.Kind(tc.err), v)
				}
				fresh := fk.IteratorCalls(types.ShardIteratorTypeAfterSequenceNumber)
				if want := map[bool]int{false: 0, true: 2}[tc.fresh]; fresh != want {
					t.Errorf("fresh AFTER_SEQUENCE_NUMBER iterators = %d, want %d", fresh, want)
				}
			})
		})
	}
}

// A poller that started at LATEST and has read no record yet cannot get
// its position back from a new iterator: LATEST would skip whatever was
// written since. It keeps its iterator through errors that do not
// invalidate it, fatal ones included.
func TestPollerKeepsLatestIteratorThroughErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fk *kinesistest.Stream // the fault writes and splits
		var want []string
		fk = newStreamOf(t, kinesistest.Config{StreamName: "s", Fault: onGetRecords(func(n int) error {
			switch {
			case n == 1: // after a first, empty read
				seq, err := fk.PutTo(shard0, "k", []byte("after the start"))
				if err != nil {
					t.Error(err)
				}
				want = append(want, seq)
				if _, _, err := fk.Split(shard0); err != nil {
					t.Error(err)
				}
				fallthrough
			case n >= 2 && n <= 3:
				return &smithy.GenericAPIError{Code: "SomethingUnexpected", Message: "odd"}
			}
			return nil
		})})
		putTo(t, fk, shard0, "k", []byte("before the start"))
		got, _ := collect(t, newTestPoller(t, fk, types.ShardIteratorTypeLatest, fastRetrieval(), testMetrics(t)))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("read %v, want %v", got, want)
		}
		if n := fk.IteratorCalls(types.ShardIteratorTypeLatest); n != 1 {
			t.Errorf("LATEST iterators = %d, want 1", n)
		}
	})
}
