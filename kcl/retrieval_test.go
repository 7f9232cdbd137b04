package kcl

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
)

func testMetrics(t *testing.T) *metrics {
	t.Helper()
	return newMetrics(nil)
}

func fastRetrieval() RetrievalConfig {
	return RetrievalConfig{MaxRecords: 10, IdleWait: 10 * time.Millisecond, CallInterval: time.Millisecond,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond, PrefetchBytes: 1 << 20}.withDefaults()
}

// collect runs a poller until the shard ends (or the deadline) and returns
// the sequence numbers delivered.
func collect(t *testing.T, p *poller) ([]string, fetched) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
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
	fk := newFakeKinesis(1)
	var want []string
	for i := range 35 {
		want = append(want, fk.putTo("shardId-000000000000", "k", []byte{byte(i)}))
	}
	a, b := fk.split("shardId-000000000000")
	p := newPoller(fk, streamRef{name: "s"}, "shardId-000000000000", startPosition{kind: types.ShardIteratorTypeTrimHorizon}, fastRetrieval(), zap.NewNop(), testMetrics(t))
	got, last := collect(t, p)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %v\nwant %v", got, want)
	}
	if len(last.children) != 2 || aws.ToString(last.children[0].ShardId) != a || aws.ToString(last.children[1].ShardId) != b {
		t.Fatalf("children at shard end = %+v, want %s and %s", last.children, a, b)
	}
}

func TestPollerRenewsExpiredIteratorAfterLastRecord(t *testing.T) {
	fk := newFakeKinesis(1)
	var want []string
	for i := range 25 {
		want = append(want, fk.putTo("shardId-000000000000", "k", []byte{byte(i)}))
	}
	fk.split("shardId-000000000000")
	var calls atomic.Int32
	fk.getRecordsErr = func(string) error {
		if calls.Add(1) == 2 { // after the first batch of 10
			return &types.ExpiredIteratorException{Message: aws.String("expired")}
		}
		return nil
	}
	m := testMetrics(t)
	p := newPoller(fk, streamRef{name: "s"}, "shardId-000000000000", startPosition{kind: types.ShardIteratorTypeTrimHorizon}, fastRetrieval(), zap.NewNop(), m)
	got, _ := collect(t, p)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %v\nwant %v", got, want)
	}
	if n := fk.iterCalls[types.ShardIteratorTypeAfterSequenceNumber]; n != 1 {
		t.Fatalf("AFTER_SEQUENCE_NUMBER iterators = %d, want 1", n)
	}
	if v := testutil.ToFloat64(m.getRecordsErrors.WithLabelValues("ExpiredIteratorException")); v != 1 {
		t.Fatalf("expired-iterator errors counted = %v, want 1", v)
	}
}

func TestPollerBacksOffOnThrottlingWithinCallRate(t *testing.T) {
	fk := newFakeKinesis(1)
	want := []string{fk.putTo("shardId-000000000000", "k", []byte("x"))}
	fk.split("shardId-000000000000")
	var calls atomic.Int32
	fk.getRecordsErr = func(string) error {
		if calls.Add(1) <= 3 {
			return &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
		}
		return nil
	}
	cfg := fastRetrieval()
	cfg.CallInterval = 20 * time.Millisecond
	m := testMetrics(t)
	p := newPoller(fk, streamRef{name: "s"}, "shardId-000000000000", startPosition{kind: types.ShardIteratorTypeTrimHorizon}, cfg, zap.NewNop(), m)
	got, _ := collect(t, p)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %v, want %v", got, want)
	}
	if v := testutil.ToFloat64(m.getRecordsErrors.WithLabelValues("ProvisionedThroughputExceededException")); v != 3 {
		t.Fatalf("throttling errors counted = %v, want 3", v)
	}
	ts := fk.calls["shardId-000000000000"]
	if len(ts) != 4 {
		t.Fatalf("GetRecords calls = %d, want 4", len(ts))
	}
	for i := 1; i < len(ts); i++ {
		if gap := ts[i].Sub(ts[i-1]); gap < cfg.CallInterval {
			t.Errorf("calls %d and %d only %v apart, want >= %v", i-1, i, gap, cfg.CallInterval)
		}
	}
	// The same iterator is reused after throttling: one iterator only.
	if n := fk.iterCalls[types.ShardIteratorTypeTrimHorizon]; n != 1 {
		t.Fatalf("iterators requested = %d, want 1", n)
	}
}

func TestPollerIdleWaitBetweenEmptyReads(t *testing.T) {
	fk := newFakeKinesis(1)
	cfg := fastRetrieval()
	cfg.IdleWait = 30 * time.Millisecond
	p := newPoller(fk, streamRef{name: "s"}, "shardId-000000000000", startPosition{kind: types.ShardIteratorTypeLatest}, cfg, zap.NewNop(), testMetrics(t))
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan fetched)
	done := make(chan struct{})
	go func() { defer close(done); p.run(ctx, out) }()
	waitFor(t, 5*time.Second, "three empty reads", func() bool {
		fk.mu.Lock()
		defer fk.mu.Unlock()
		return len(fk.calls["shardId-000000000000"]) >= 3
	})
	seq := fk.putTo("shardId-000000000000", "k", []byte("late"))
	f := <-out
	cancel()
	<-done
	if len(f.records) != 1 || aws.ToString(f.records[0].SequenceNumber) != seq {
		t.Fatalf("got %+v, want the one record written after LATEST", f.records)
	}
	fk.mu.Lock()
	ts := fk.calls["shardId-000000000000"]
	fk.mu.Unlock()
	for i := 1; i < 3; i++ {
		if gap := ts[i].Sub(ts[i-1]); gap < cfg.IdleWait {
			t.Errorf("empty reads %d and %d only %v apart, want >= %v", i-1, i, gap, cfg.IdleWait)
		}
	}
}

func TestPollerPrefetchBoundedByBytes(t *testing.T) {
	for _, tc := range []struct {
		name          string
		prefetchBytes int
		wantAhead     bool
	}{{"small batches prefetch", 1 << 20, true}, {"large batch waits", 5, false}} {
		t.Run(tc.name, func(t *testing.T) {
			fk := newFakeKinesis(1)
			for range 30 {
				fk.putTo("shardId-000000000000", "k", []byte("0123456789"))
			}
			cfg := fastRetrieval()
			cfg.PrefetchBytes = tc.prefetchBytes
			p := newPoller(fk, streamRef{name: "s"}, "shardId-000000000000", startPosition{kind: types.ShardIteratorTypeTrimHorizon}, cfg, zap.NewNop(), testMetrics(t))
			ctx, cancel := context.WithCancel(context.Background())
			out := make(chan fetched)
			done := make(chan struct{})
			go func() { defer close(done); p.run(ctx, out) }()
			defer func() { cancel(); <-done }()
			calls := func() int {
				fk.mu.Lock()
				defer fk.mu.Unlock()
				return len(fk.calls["shardId-000000000000"])
			}
			first := <-out // not done yet
			if tc.wantAhead {
				waitFor(t, 5*time.Second, "the next batch to be fetched ahead", func() bool { return calls() == 2 })
				return
			}
			// Negative check: give the poller time it would use to fetch ahead.
			time.Sleep(50 * time.Millisecond)
			if n := calls(); n != 1 {
				t.Fatalf("GetRecords calls while a large batch is processed = %d, want 1", n)
			}
			p.done(first.seqNo)
			waitFor(t, 5*time.Second, "the next batch after the large one is done", func() bool { return calls() == 2 })
		})
	}
}

func TestBackoffDelayBounds(t *testing.T) {
	base, max := 100*time.Millisecond, time.Second
	for attempt := 1; attempt <= 10; attempt++ {
		ceil := base << (attempt - 1)
		if ceil > max {
			ceil = max
		}
		for range 50 {
			d := backoffDelay(attempt, base, max)
			if d < ceil/2 || d > ceil {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, ceil/2, ceil)
			}
		}
	}
}

// waitFor polls cond every few milliseconds until it holds or the deadline
// passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Unknown API errors are retried with the same iterator once, then with a
// fresh one from the last record read.
func TestPollerFreshIteratorAfterRepeatedUnknownErrors(t *testing.T) {
	fk := newFakeKinesis(1)
	var want []string
	for i := range 15 {
		want = append(want, fk.putTo("shardId-000000000000", "k", []byte{byte(i)}))
	}
	fk.split("shardId-000000000000")
	var calls atomic.Int32
	fk.getRecordsErr = func(string) error {
		if n := calls.Add(1); n >= 2 && n <= 4 { // after the first batch of 10
			return &smithy.GenericAPIError{Code: "SomethingUnexpected", Message: "odd"}
		}
		return nil
	}
	m := testMetrics(t)
	p := newPoller(fk, streamRef{name: "s"}, "shardId-000000000000", startPosition{kind: types.ShardIteratorTypeTrimHorizon}, fastRetrieval(), zap.NewNop(), m)
	got, _ := collect(t, p)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %v\nwant %v", got, want)
	}
	if v := testutil.ToFloat64(m.getRecordsErrors.WithLabelValues("other")); v != 3 {
		t.Errorf("other errors counted = %v, want 3", v)
	}
	if n := fk.iterCalls[types.ShardIteratorTypeAfterSequenceNumber]; n == 0 {
		t.Errorf("no fresh iterator after repeated failures")
	}
}

// A poller that started at LATEST and has read no record yet cannot get
// its position back from a new iterator: LATEST would skip whatever was
// written since. It keeps its iterator through errors that do not
// invalidate it.
func TestPollerKeepsLatestIteratorThroughErrors(t *testing.T) {
	fk := newFakeKinesis(1)
	const shard = "shardId-000000000000"
	fk.putTo(shard, "k", []byte("before the start"))
	var calls atomic.Int32
	var want []string
	fk.getRecordsErr = func(string) error {
		switch n := calls.Add(1); {
		case n == 2: // after a first, empty read
			want = append(want, fk.putTo(shard, "k", []byte("after the start")))
			fk.split(shard)
			fallthrough
		case n >= 3 && n <= 4:
			return &smithy.GenericAPIError{Code: "SomethingUnexpected", Message: "odd"}
		}
		return nil
	}
	p := newPoller(fk, streamRef{name: "s"}, shard, startPosition{kind: types.ShardIteratorTypeLatest}, fastRetrieval(), zap.NewNop(), testMetrics(t))
	got, _ := collect(t, p)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %v, want %v", got, want)
	}
}
