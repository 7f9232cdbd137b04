package kcl

// The subscriber's tests run in synctest bubbles against fakeFanOut, which
// serves subscriptions from an in-memory stream the way Kinesis does (an
// event per read, the continuation sequence number, ChildShards at a closed
// shard's end), so that waits take no real time.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/kinesistest"
)

// fakeFanOut serves subscriptions from fk's shards.
type fakeFanOut struct {
	fk *kinesistest.Stream
	// stream is fk's name. Default "s".
	stream string
	// maxEvents ends each subscription cleanly after that many events, as
	// the service does after 5 minutes. 0: no limit.
	maxEvents int
	// fail is the error of the n-th SubscribeToShard call (from 1), nil
	// for none.
	fail func(n int) error
	// cut is the error that ends the n-th subscription after its first
	// event, nil for none.
	cut func(n int) error

	mu        sync.Mutex
	positions []types.StartingPosition
	sent      int // events sent, in all
}

func (f *fakeFanOut) calls() []types.StartingPosition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]types.StartingPosition(nil), f.positions...)
}

func (f *fakeFanOut) eventsSent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

// fakeEvents is one subscription's event stream.
type fakeEvents struct {
	ch     chan types.SubscribeToShardEventStream
	closed chan struct{}
	once   sync.Once
	err    error // set before ch is closed
}

func (e *fakeEvents) Events() <-chan types.SubscribeToShardEventStream { return e.ch }
func (e *fakeEvents) Err() error                                       { return e.err }
func (e *fakeEvents) Close() error {
	e.once.Do(func() { close(e.closed) })
	return nil
}

func (f *fakeFanOut) subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (eventStream, error) {
	f.mu.Lock()
	f.positions = append(f.positions, *in.StartingPosition)
	n := len(f.positions)
	f.mu.Unlock()
	if f.fail != nil {
		if err := f.fail(n); err != nil {
			return nil, err
		}
	}
	pos := in.StartingPosition
	it, err := f.fk.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(cmp.Or(f.stream, "s")), ShardId: in.ShardId,
		ShardIteratorType: pos.Type, StartingSequenceNumber: pos.SequenceNumber, Timestamp: pos.Timestamp})
	if err != nil {
		return nil, err
	}
	var cut error
	if f.cut != nil {
		cut = f.cut(n)
	}
	es := &fakeEvents{ch: make(chan types.SubscribeToShardEventStream), closed: make(chan struct{})}
	go func() {
		defer close(es.ch)
		iter, cont, sent := it.ShardIterator, aws.ToString(pos.SequenceNumber), 0
		for {
			out, err := f.fk.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10)})
			if err != nil {
				es.err = err
				return
			}
			if k := len(out.Records); k > 0 {
				cont = aws.ToString(out.Records[k-1].SequenceNumber)
			}
			ev := types.SubscribeToShardEvent{Records: out.Records, ContinuationSequenceNumber: aws.String(cont), MillisBehindLatest: out.MillisBehindLatest}
			end := out.NextShardIterator == nil
			if end {
				ev.ChildShards = out.ChildShards
			}
			select {
			case es.ch <- &types.SubscribeToShardEventStreamMemberSubscribeToShardEvent{Value: ev}:
			case <-es.closed:
				return
			case <-ctx.Done():
				return
			}
			f.mu.Lock()
			f.sent++
			f.mu.Unlock()
			sent++
			switch {
			case end:
				return
			case cut != nil:
				es.err = cut
				return
			case f.maxEvents > 0 && sent >= f.maxEvents:
				return
			}
			if len(out.Records) == 0 {
				select {
				case <-time.After(time.Second):
				case <-es.closed:
					return
				case <-ctx.Done():
					return
				}
			}
			iter = out.NextShardIterator
		}
	}()
	return es, nil
}

func newTestSubscriber(t *testing.T, f *fakeFanOut, start startPosition, cfg RetrievalConfig, fm *fanOutMetrics) *subscriber {
	t.Helper()
	return newSubscriber(f.subscribe, f.fk, streamNamed(t, "s"), "arn:consumer", shard0, start, cfg, zap.NewNop(), testMetrics(t), fm)
}

// collectAll runs a subscriber until the shard ends and returns the
// sequence numbers delivered and the last delivery.
func collectAll(t *testing.T, s *subscriber) ([]string, fetched) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	out := make(chan fetched)
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, out) }()
	defer func() { cancel(); <-done }()
	var seqs []string
	for f := range out {
		for _, r := range f.records {
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
		}
		s.done(f.seqNo)
		if f.end || f.gone != nil {
			return seqs, f
		}
	}
	t.Fatalf("subscriber stopped before the shard ended: %v", ctx.Err())
	return nil, fetched{}
}

func putMany(t *testing.T, fk *kinesistest.Stream, n int) []string {
	var want []string
	for i := range n {
		want = append(want, putTo(t, fk, shard0, "k", []byte{byte(i)}))
	}
	return want
}

var trimHorizon = startPosition{kind: types.ShardIteratorTypeTrimHorizon}

func TestSubscriberReadsClosedShardToEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStream(t, "s", 1)
		want := putMany(t, fk, 35)
		a, b := split(t, fk, shard0)
		fm := newFanOutMetrics(nil)
		got, last := collectAll(t, newTestSubscriber(t, &fakeFanOut{fk: fk}, trimHorizon, fastRetrieval(), fm))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("read %v\nwant %v", got, want)
		}
		if !last.end || len(last.children) != 2 || aws.ToString(last.children[0].ShardId) != a || aws.ToString(last.children[1].ShardId) != b {
			t.Fatalf("last delivery %+v, want the end with children %s and %s", last, a, b)
		}
		if v := testutil.ToFloat64(fm.subscriptions.WithLabelValues("started")); v != 1 {
			t.Errorf("subscriptions started = %v, want 1", v)
		}
	})
}

// Each subscription the service ends is renewed from the last event's
// continuation sequence number, a second or more after the previous call:
// nothing is lost or read twice.
func TestSubscriberRenewsFromContinuation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStream(t, "s", 1)
		want := putMany(t, fk, 35)
		split(t, fk, shard0)
		f := &fakeFanOut{fk: fk, maxEvents: 1}
		fm := newFanOutMetrics(nil)
		start := time.Now()
		got, _ := collectAll(t, newTestSubscriber(t, f, trimHorizon, fastRetrieval(), fm))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("read %v\nwant %v", got, want)
		}
		calls := f.calls()
		if len(calls) != 4 { // 10 records an event: 10, 20, 30, then the last 5 with the children
			t.Fatalf("%d subscriptions, want 4", len(calls))
		}
		for i, c := range calls[1:] {
			if c.Type != types.ShardIteratorTypeAfterSequenceNumber || aws.ToString(c.SequenceNumber) != want[10*(i+1)-1] {
				t.Errorf("subscription %d from %s %s, want after %s", i+2, c.Type, aws.ToString(c.SequenceNumber), want[10*(i+1)-1])
			}
		}
		if d := time.Since(start); d < 3*subscribeInterval {
			t.Errorf("4 subscriptions within %v: less than a second apart", d)
		}
		if v := testutil.ToFloat64(fm.subscriptions.WithLabelValues("renewed")); v != 3 {
			t.Errorf("subscriptions renewed = %v, want 3", v)
		}
	})
}

// A subscription still open at renewAfter is closed and renewed, before the
// service would end it.
func TestSubscriberRenewsBeforeLifetime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStream(t, "s", 1)
		f := &fakeFanOut{fk: fk}
		fm := newFanOutMetrics(nil)
		s := newTestSubscriber(t, f, trimHorizon, fastRetrieval(), fm)
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan fetched)
		done := make(chan struct{})
		go func() { defer close(done); s.run(ctx, out) }()
		time.Sleep(subscriptionRenewAfter + time.Minute)
		want := putMany(t, fk, 3)
		// The subscription's reader may wake between two puts: the
		// records can come in more than one event.
		var got []string
		for len(got) < len(want) {
			f := <-out
			for _, r := range f.records {
				got = append(got, aws.ToString(r.SequenceNumber))
			}
			s.done(f.seqNo)
		}
		cancel()
		<-done
		if !slices.Equal(got, want) {
			t.Errorf("after the renewal: %v, want %v", got, want)
		}
		if v := testutil.ToFloat64(fm.subscriptions.WithLabelValues("renewed")); v != 1 {
			t.Errorf("subscriptions renewed in 5m50s = %v, want 1", v)
		}
	})
}

// Failed calls and subscriptions cut by an error are retried with backoff
// from the continuation; each failure counts under its kind.
func TestSubscriberResubscribesAfterErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStream(t, "s", 1)
		want := putMany(t, fk, 25)
		split(t, fk, shard0)
		f := &fakeFanOut{fk: fk,
			fail: func(n int) error {
				if n == 1 {
					return &types.ResourceInUseException{Message: aws.String("another subscription")}
				}
				return nil
			},
			cut: func(n int) error {
				if n == 2 {
					return &types.InternalFailureException{Message: aws.String("internal")}
				}
				return nil
			},
		}
		fm := newFanOutMetrics(nil)
		got, _ := collectAll(t, newTestSubscriber(t, f, trimHorizon, fastRetrieval(), fm))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("read %v\nwant %v", got, want)
		}
		for _, kind := range []string{"ResourceInUseException", "InternalFailureException"} {
			if v := testutil.ToFloat64(fm.subscribeErrors.WithLabelValues(kind)); v != 1 {
				t.Errorf("%s counted %v times, want 1", kind, v)
			}
		}
		if v := testutil.ToFloat64(fm.subscriptions.WithLabelValues("resubscribed")); v != 2 {
			t.Errorf("resubscribed = %v, want 2", v)
		}
		if c := f.calls(); len(c) != 3 || c[2].Type != types.ShardIteratorTypeAfterSequenceNumber || aws.ToString(c[2].SequenceNumber) != want[9] {
			t.Errorf("subscriptions %+v, want the third after %s", c, want[9])
		}
	})
}

// A batch of PrefetchBytes or more is not followed by another until it is
// done: the subscriber leaves the next event unread.
func TestSubscriberPrefetchBoundedByBytes(t *testing.T) {
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
				f := &fakeFanOut{fk: fk}
				s := newTestSubscriber(t, f, trimHorizon, cfg, newFanOutMetrics(nil))
				ctx, cancel := context.WithCancel(context.Background())
				out := make(chan fetched)
				done := make(chan struct{})
				go func() { defer close(done); s.run(ctx, out) }()
				defer func() { cancel(); <-done }()
				first := <-out // not done yet
				time.Sleep(time.Second)
				synctest.Wait()
				if tc.wantAhead {
					if n := f.eventsSent(); n != 2 {
						t.Fatalf("events taken while a small batch is processed = %d, want 2 (one ahead)", n)
					}
					return
				}
				if n := f.eventsSent(); n != 1 {
					t.Fatalf("events taken while a large batch is processed = %d, want 1", n)
				}
				s.done(first.seqNo)
				time.Sleep(time.Second)
				synctest.Wait()
				if n := f.eventsSent(); n != 2 {
					t.Fatalf("events taken after the large batch is done = %d, want 2", n)
				}
			})
		})
	}
}

// A shard that aged out ends like a closed one, with the children
// ListShards names; a stream that is gone is reported as such.
func TestSubscriberExpiredShard(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStream(t, "s", 1)
		putMany(t, fk, 3)
		a, b := split(t, fk, shard0)
		if err := fk.Expire(shard0); err != nil {
			t.Fatal(err)
		}
		fm := newFanOutMetrics(nil)
		_, last := collectAll(t, newTestSubscriber(t, &fakeFanOut{fk: fk}, trimHorizon, fastRetrieval(), fm))
		if !last.end || !last.expired || len(last.children) != 2 || aws.ToString(last.children[0].ShardId) != a || aws.ToString(last.children[1].ShardId) != b {
			t.Fatalf("last delivery %+v, want the expired end with children %s and %s", last, a, b)
		}
		if v := testutil.ToFloat64(fm.subscribeErrors.WithLabelValues("ResourceNotFoundException")); v != 1 {
			t.Errorf("ResourceNotFoundException counted %v times, want 1", v)
		}
	})
}

func TestSubscriberStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStream(t, "s", 1)
		f := &fakeFanOut{fk: fk, fail: func(int) error { return errors.New("network down") }}
		s := newTestSubscriber(t, f, trimHorizon, fastRetrieval(), newFanOutMetrics(nil))
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan fetched)
		done := make(chan struct{})
		go func() { defer close(done); s.run(ctx, out) }()
		time.Sleep(10 * time.Second)
		cancel()
		<-done
		if _, ok := <-out; ok {
			t.Fatal("a delivery after repeated failures")
		}
		if n := len(f.calls()); n < 3 {
			t.Errorf("%d subscribe calls in 10s of failures, want retries", n)
		}
	})
}

// The poller's start positions: AT_SEQUENCE_NUMBER delivers from that
// record, LATEST only what is written after the subscription.
func TestSubscriberStartPositions(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fk := newStream(t, "s", 1)
		want := putMany(t, fk, 12)
		f := &fakeFanOut{fk: fk}
		got, _ := collectAllUntil(t, newTestSubscriber(t, f, startPosition{kind: types.ShardIteratorTypeAtSequenceNumber, seq: want[5]},
			fastRetrieval(), newFanOutMetrics(nil)), 7, nil)
		if fmt.Sprint(got) != fmt.Sprint(want[5:]) {
			t.Errorf("AT_SEQUENCE_NUMBER %s: read %v, want %v", want[5], got, want[5:])
		}
		if c := f.calls(); c[0].Type != types.ShardIteratorTypeAtSequenceNumber || aws.ToString(c[0].SequenceNumber) != want[5] {
			t.Errorf("first subscription from %+v", c[0])
		}

		written := make(chan []string, 1)
		got, _ = collectAllUntil(t, newTestSubscriber(t, &fakeFanOut{fk: fk}, startPosition{kind: types.ShardIteratorTypeLatest},
			fastRetrieval(), newFanOutMetrics(nil)), 2, func() {
			time.Sleep(time.Second) // subscribed
			written <- putMany(t, fk, 2)
		})
		if later := <-written; fmt.Sprint(got) != fmt.Sprint(later) {
			t.Errorf("LATEST: read %v, want %v", got, later)
		}
	})
}

// collectAllUntil runs a subscriber until n records are delivered, with
// meanwhile run (if not nil) in the background.
func collectAllUntil(t *testing.T, s *subscriber, n int, meanwhile func()) ([]string, fetched) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan fetched)
	done := make(chan struct{})
	go func() { defer close(done); s.run(ctx, out) }()
	if meanwhile != nil {
		go meanwhile()
	}
	defer func() { cancel(); <-done }()
	var seqs []string
	var last fetched
	for len(seqs) < n {
		f, ok := <-out
		if !ok {
			t.Fatalf("subscriber stopped after %d of %d records", len(seqs), n)
		}
		for _, r := range f.records {
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
		}
		s.done(f.seqNo)
		last = f
	}
	return seqs, last
}
