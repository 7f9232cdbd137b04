package kpl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kinesistest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Idle keep-alive connections of the AWS SDK's HTTP clients.
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// results collects callback outcomes.
type results struct {
	mu   sync.Mutex
	byID map[string]Result
	done chan struct{}
	want int
}

func newResults(want int) *results {
	return &results{byID: map[string]Result{}, done: make(chan struct{}), want: want}
}

func (r *results) callback(id string) func(Result) {
	return func(res Result) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if _, dup := r.byID[id]; dup {
			panic("callback called twice for " + id)
		}
		r.byID[id] = res
		if len(r.byID) == r.want {
			close(r.done)
		}
	}
}

func (r *results) wait(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		r.mu.Lock()
		defer r.mu.Unlock()
		t.Fatalf("%d of %d callbacks after %v", len(r.byID), r.want, d)
	}
}

func newProducer(t *testing.T, f KinesisAPI, cfg Config) *Producer {
	t.Helper()
	cfg.Stream = testStream
	cfg.Kinesis = f
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// putMany puts n records with keys from keyOf and returns the results.
func putMany(t *testing.T, p *Producer, n int, keyOf func(i int) string) *results {
	t.Helper()
	res := newResults(n)
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("rec-%06d", i)
		if err := p.Put(context.Background(), Record{PartitionKey: keyOf(i), Data: []byte(id)}, res.callback(id)); err != nil {
			t.Fatal(err)
		}
	}
	return res
}

// checkExactlyOnce checks that the stream holds every record id of n
// exactly once, on the shard its key maps to, and returns its user records,
// shard by shard in sequence order.
func checkExactlyOnce(t *testing.T, f *kinesistest.Stream, n int, keyOf func(i int) string) []kinesistest.UserRecord {
	t.Helper()
	got := f.UserRecords()
	seen := map[string]int{}
	for _, u := range got {
		seen[string(u.Data)]++
		var i int
		fmt.Sscanf(string(u.Data), "rec-%d", &i)
		if u.PartitionKey != keyOf(i) {
			t.Fatalf("%s has key %q, want %q", u.Data, u.PartitionKey, keyOf(i))
		}
		if want := shardFor(t, f, u.PartitionKey, ""); want != u.ShardID {
			t.Fatalf("%s on %s, its key maps to %s", u.Data, u.ShardID, want)
		}
	}
	for i := 0; i < n; i++ {
		if c := seen[fmt.Sprintf("rec-%06d", i)]; c != 1 {
			t.Fatalf("rec-%06d stored %d times", i, c)
		}
	}
	if len(got) != n {
		t.Fatalf("%d user records stored, want %d", len(got), n)
	}
	return got
}

func randomKey(i int) string { return fmt.Sprintf("key-%d", (i*7919)%1000) }

func serverError() error {
	return &smithy.GenericAPIError{Code: "InternalFailure", Message: "boom", Fault: smithy.FaultServer}
}

const maxKey = "340282366920938463463374607431768211455"

// putRecorder records the PutRecords inputs it passes on to the stream.
type putRecorder struct {
	*kinesistest.Stream
	putsMu sync.Mutex
	puts   []kinesis.PutRecordsInput
}

func (r *putRecorder) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	r.putsMu.Lock()
	r.puts = append(r.puts, *in)
	r.putsMu.Unlock()
	return r.Stream.PutRecords(ctx, in, opts...)
}

// A producer given a stream ARN names the stream by StreamARN, and not by
// StreamName, in every call.
func TestStreamARN(t *testing.T) {
	const arn = "arn:aws:kinesis:us-east-1:123456789012:stream/events"
	f := &putRecorder{Stream: newStreamOf(t, kinesistest.Config{StreamARN: arn, Shards: 2, ListShardsPageSize: 1})}
	reg := prometheus.NewRegistry()
	p, err := New(Config{Stream: arn, Kinesis: f, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	lists := f.ListShardsInputs()
	if len(lists) < 2 {
		t.Fatalf("%d ListShards calls, want 2 pages", len(lists))
	}
	if first := lists[0]; aws.ToString(first.StreamARN) != arn || first.StreamName != nil {
		t.Fatalf("ListShards StreamARN %q, StreamName %q; want the ARN and no name", aws.ToString(first.StreamARN), aws.ToString(first.StreamName))
	}
	if next := lists[1]; next.StreamARN != nil || next.StreamName != nil || next.NextToken == nil {
		t.Fatalf("ListShards next page %+v: want NextToken alone", next)
	}
	f.putsMu.Lock()
	defer f.putsMu.Unlock()
	if len(f.puts) == 0 {
		t.Fatal("no PutRecords call")
	}
	for _, in := range f.puts {
		if aws.ToString(in.StreamARN) != arn || in.StreamName != nil {
			t.Fatalf("PutRecords StreamARN %q, StreamName %q; want the ARN and no name", aws.ToString(in.StreamARN), aws.ToString(in.StreamName))
		}
	}
	// Metrics are labelled with the stream's name.
	if got := testutil.ToFloat64(p.metrics.userRecords); got != 1 {
		t.Fatalf("user records metric %v", got)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range families[0].GetMetric()[0].GetLabel() {
		if l.GetName() == "stream" && l.GetValue() != "events" {
			t.Fatalf("stream label %q, want the stream's name", l.GetValue())
		}
	}
}

func TestValidateRejectsBadRecords(t *testing.T) {
	f := newStream(t, 1)
	p := newProducer(t, f, Config{MaxRecordSize: 1000, AggregationMaxSize: 500, MaxBufferedBytes: 1 << 20})
	cases := map[string]Record{
		"partition key is empty":         {Data: []byte("x")},
		"partition key has 257":          {PartitionKey: strings.Repeat("é", 257), Data: []byte("x")},
		"not valid UTF-8":                {PartitionKey: "a\xffb", Data: []byte("x")},
		"more than the maximum record":   {PartitionKey: "k", Data: make([]byte, 1000)},
		"explicit hash key: hashkey":     {PartitionKey: "k", ExplicitHashKey: "12a", Data: []byte("x")},
		"explicit hash key: hashkey: no": {PartitionKey: "k", ExplicitHashKey: "340282366920938463463374607431768211456"},
	}
	for want, rec := range cases {
		err := p.Put(context.Background(), rec, func(Result) { t.Error("callback called for a rejected record") })
		if !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: err = %v, want ErrInvalidRecord", want, err)
			continue
		}
		if !strings.Contains(err.Error(), strings.Fields(strings.TrimSuffix(want, ": no"))[0]) {
			t.Errorf("err %q does not say what is wrong (%s)", err, want)
		}
	}
	if n := p.buffered(); n != 0 {
		t.Fatalf("%d records buffered after rejections", n)
	}
	// The limits themselves are accepted: 256 characters, data up to the max.
	for _, rec := range []Record{
		{PartitionKey: strings.Repeat("é", 256), Data: []byte("x")},
		{PartitionKey: "k", Data: make([]byte, 999)},
		{PartitionKey: "k", ExplicitHashKey: "340282366920938463463374607431768211455", Data: nil},
	} {
		if _, err := p.PutSync(context.Background(), rec); err != nil {
			t.Fatalf("valid record rejected: %v", err)
		}
	}
}

// Kinesis accepts an ExplicitHashKey only in canonical decimal form
// (0|[1-9][0-9]{0,38}); any other spelling fails the whole PutRecords
// request, and with it every other record in that request. Put must reject
// such a key up front.
func TestExplicitHashKeyMustBeCanonical(t *testing.T) {
	f := newStream(t, 1)
	p := newProducer(t, f, Config{})
	for _, ehk := range []string{"007", "00", "0123456789"} {
		err := p.Put(context.Background(), Record{PartitionKey: "k", ExplicitHashKey: ehk, Data: []byte("x")},
			func(Result) { t.Errorf("callback called for rejected key %q", ehk) })
		if !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("Put with ExplicitHashKey %q: err = %v, want ErrInvalidRecord", ehk, err)
		}
	}
	for _, ehk := range []string{"0", "7", "340282366920938463463374607431768211455"} {
		if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", ExplicitHashKey: ehk, Data: []byte("x")}); err != nil {
			t.Errorf("Put with ExplicitHashKey %q: %v", ehk, err)
		}
	}
}

// Kinesis counts a partition key's length in UTF-16 code units (as Java
// strings do), so a character outside the Basic Multilingual Plane counts
// twice; a key over 256 units fails the whole request it travels in.
func TestPartitionKeyLengthInUTF16Units(t *testing.T) {
	f := newStream(t, 1)
	p := newProducer(t, f, Config{})
	err := p.Put(context.Background(), Record{PartitionKey: strings.Repeat("😀", 129), Data: []byte("x")},
		func(Result) { t.Error("callback called for a rejected key") })
	if !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("Put with 129 astral characters (258 UTF-16 units): err = %v, want ErrInvalidRecord", err)
	}
	for _, pk := range []string{strings.Repeat("😀", 128), strings.Repeat("é", 256), strings.Repeat("😀", 127) + "ab"} {
		if _, err := p.PutSync(context.Background(), Record{PartitionKey: pk, Data: []byte("x")}); err != nil {
			t.Errorf("key of %d runes rejected: %v", len([]rune(pk)), err)
		}
	}
}

func TestBackpressure(t *testing.T) {
	f := newStream(t, 1)
	release := f.Hold(kinesistest.OpPutRecords)
	p := newProducer(t, f, Config{MaxBufferedRecords: 10, RecordMaxBufferedTime: time.Millisecond})
	res := newResults(11)
	for i := 0; i < 10; i++ {
		if err := p.Put(context.Background(), Record{PartitionKey: "k", Data: []byte("d")}, res.callback(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Put(ctx, Record{PartitionKey: "k", Data: []byte("d")}, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put on a full buffer = %v, want the context's error", err)
	}
	p.cfg.FailWhenBufferFull = true
	if err := p.Put(context.Background(), Record{PartitionKey: "k", Data: []byte("d")}, nil); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("Put on a full buffer = %v, want ErrBufferFull", err)
	}
	p.cfg.FailWhenBufferFull = false
	// A blocked Put proceeds once records complete.
	errc := make(chan error, 1)
	go func() {
		errc <- p.Put(context.Background(), Record{PartitionKey: "k", Data: []byte("d")}, res.callback("last"))
	}()
	release()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	res.wait(t, 5*time.Second)
}

// A callback may call Put (while there is room in the buffer) without
// deadlocking the producer, whichever goroutine runs the callback: a sender
// on success, the dispatcher on expiry.
func TestCallbackMayPut(t *testing.T) {
	f := newStream(t, 2)
	p := newProducer(t, f, Config{RecordMaxBufferedTime: time.Millisecond})
	const depth = 50
	done := make(chan error, 1)
	var chain func(i int) func(Result)
	chain = func(i int) func(Result) {
		return func(r Result) {
			if r.Err != nil || i == depth {
				done <- r.Err
				return
			}
			if err := p.Put(context.Background(), Record{PartitionKey: randomKey(i), Data: []byte("x")}, chain(i+1)); err != nil {
				done <- err
			}
		}
	}
	if err := p.Put(context.Background(), Record{PartitionKey: "start", Data: []byte("x")}, chain(0)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("chain of Puts from callbacks stalled")
	}

	// From the dispatcher: records that expire before a shard map exists.
	f2 := newStreamOf(t, kinesistest.Config{Fault: faultOn(kinesistest.OpListShards, func(int) error { return serverError() })})
	p2 := newProducer(t, f2, Config{RecordTTL: 20 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	got := make(chan error, 2)
	err := p2.Put(context.Background(), Record{PartitionKey: "a", Data: []byte("x")}, func(r Result) {
		got <- r.Err
		if err := p2.Put(context.Background(), Record{PartitionKey: "b", Data: []byte("x")}, func(r Result) { got <- r.Err }); err != nil {
			got <- err
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		select {
		case err := <-got:
			if !errors.Is(err, ErrRecordExpired) {
				t.Fatalf("err = %v, want ErrRecordExpired", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("callback calling Put from the dispatcher stalled")
		}
	}
}

// A callback that puts one record for the one it completes does not
// deadlock on a full buffer: a completed record's room is given back before
// its callback runs.
func TestCallbackMayPutWhenBufferFull(t *testing.T) {
	f := newStream(t, 1)
	p := newProducer(t, f, Config{MaxBufferedRecords: 1, RecordMaxBufferedTime: time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	const depth = 20
	done := make(chan error, 1)
	var chain func(i int) func(Result)
	chain = func(i int) func(Result) {
		return func(r Result) {
			if r.Err != nil || i == depth {
				done <- r.Err
				return
			}
			if err := p.Put(ctx, Record{PartitionKey: randomKey(i), Data: []byte("x")}, chain(i+1)); err != nil {
				done <- err
			}
		}
	}
	if err := p.Put(ctx, Record{PartitionKey: "start", Data: []byte("x")}, chain(0)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("chain of Puts from callbacks with a one-record buffer: %v", err)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestCloseFlushes(t *testing.T) {
	f := newStreamOf(t, kinesistest.Config{StreamName: "s", Shards: 2})
	p, err := New(Config{Stream: "s", Kinesis: f, RecordMaxBufferedTime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	res := putMany(t, p, 100, randomKey)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	checkExactlyOnce(t, f, 100, randomKey)
}

func TestCloseFailsWhatCannotBeSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newStreamOf(t, kinesistest.Config{StreamName: "s"})
		f.Hold(kinesistest.OpPutRecords) // never released
		p, err := New(Config{Stream: "s", Kinesis: f, RecordMaxBufferedTime: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		res := putMany(t, p, 20, randomKey)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := p.Close(ctx); err == nil || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v", err)
		}
		res.wait(t, time.Second)
		for id, r := range res.byID {
			if !errors.Is(r.Err, ErrClosed) {
				t.Fatalf("%s: %v, want ErrClosed", id, r.Err)
			}
		}
		if err := p.Put(context.Background(), Record{PartitionKey: "k"}, nil); !errors.Is(err, ErrClosed) {
			t.Fatalf("Put after Close = %v", err)
		}
		if err2 := p.Close(context.Background()); err2 == nil {
			t.Fatal("second Close lost the error")
		}
	})
}

// Close's error reports the records that Close failed, not those merely
// outstanding at its deadline: a request that completes after the deadline
// (the client not stopping at once) writes its records, and when that was
// all, Close returns nil.
func TestCloseErrorCountsFailedRecords(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newStreamOf(t, kinesistest.Config{StreamName: "s", Fault: faultOn(kinesistest.OpPutRecords, func(int) error {
			time.Sleep(100 * time.Millisecond) // ignores cancellation
			return nil
		})})
		p, err := New(Config{Stream: "s", Kinesis: f, RecordMaxBufferedTime: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		res := putMany(t, p, 10, randomKey)
		time.Sleep(time.Millisecond) // RecordMaxBufferedTime
		synctest.Wait()
		if p.inflight.Load() == 0 {
			t.Fatal("no request in flight")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		closeErr := p.Close(ctx)
		res.wait(t, time.Second)
		for id, r := range res.byID {
			if r.Err != nil {
				t.Fatalf("%s: %v", id, r.Err)
			}
		}
		if closeErr != nil {
			t.Fatalf("Close = %v, though every record was written", closeErr)
		}

		// Records never sent are failed and counted.
		f2 := newStreamOf(t, kinesistest.Config{StreamName: "s"})
		f2.Hold(kinesistest.OpPutRecords) // never released
		p2, err := New(Config{Stream: "s", Kinesis: f2, RecordMaxBufferedTime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		res2 := putMany(t, p2, 7, randomKey)
		ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel2()
		closeErr = p2.Close(ctx2)
		res2.wait(t, time.Second)
		if !errors.Is(closeErr, context.DeadlineExceeded) || !strings.Contains(fmtErr(closeErr), "7 records") {
			t.Fatalf("Close = %v, want 7 records failed on the deadline", closeErr)
		}
	})
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestChaosEveryRecordOnce puts records from several goroutines while
// entries and whole calls fail at random and the stream is resharded twice,
// then checks that every callback ran once, that every record reported
// written is stored where its result says (shard, sequence number,
// sub-sequence number), and that nothing is stored twice or lost.
func TestChaosEveryRecordOnce(t *testing.T) {
	for _, order := range []bool{false, true} {
		t.Run(fmt.Sprintf("PreserveOrder=%v", order), func(t *testing.T) {
			var mu sync.Mutex
			r := rand.New(rand.NewPCG(9, uint64(len(fmt.Sprint(order)))))
			f := newStreamOf(t, kinesistest.Config{
				Shards: 2,
				EntryFault: func(kinesistest.PutEntry) string {
					mu.Lock()
					defer mu.Unlock()
					switch x := r.IntN(10); {
					case x < 1:
						return "ProvisionedThroughputExceededException"
					case x < 2:
						return "InternalFailure"
					}
					return ""
				},
				Fault: faultOn(kinesistest.OpPutRecords, func(int) error {
					mu.Lock()
					defer mu.Unlock()
					if r.IntN(20) == 0 {
						return serverError()
					}
					return nil
				}),
			})
			p := newProducer(t, f, Config{
				PreserveOrder: order, AggregationMaxSize: 300, CollectionMaxCount: 10,
				RecordMaxBufferedTime: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
				minRefreshInterval: time.Millisecond,
			})
			wait.For(t, 5*time.Second, "a shard map", func() bool { return p.shards.Load() != nil })
			const workers, per = 4, 750
			res := newResults(workers * per)
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						n := w*per + i
						id := fmt.Sprintf("rec-%06d", n)
						if err := p.Put(context.Background(), Record{PartitionKey: randomKey(n), Data: []byte(id)}, res.callback(id)); err != nil {
							t.Error(err)
							return
						}
						switch {
						case w == 0 && i == per/3: // split both: shards 2 to 5
							for _, id := range []string{"shardId-000000000000", "shardId-000000000001"} {
								if _, _, err := f.Split(id); err != nil {
									t.Error(err)
									return
								}
							}
						case w == 0 && i == 2*per/3: // and again: 3 and 4 merge into 6
							if _, err := f.Merge("shardId-000000000003", "shardId-000000000004"); err != nil {
								t.Error(err)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			res.wait(t, time.Second)
			stored := map[string]kinesistest.UserRecord{} // by shard/seq/sub
			for _, u := range f.UserRecords() {
				stored[fmt.Sprintf("%s/%s/%d", u.ShardID, u.SequenceNumber, u.SubSequenceNumber)] = u
			}
			for id, r := range res.byID {
				if r.Err != nil {
					t.Fatalf("%s failed: %v", id, r.Err)
				}
				u, ok := stored[fmt.Sprintf("%s/%s/%d", r.ShardID, r.SequenceNumber, r.SubSequenceNumber)]
				if !ok || string(u.Data) != id {
					t.Fatalf("%s reported at %s %s/%d, where the stream holds %+v", id, r.ShardID, r.SequenceNumber, r.SubSequenceNumber, u)
				}
			}
			// Once each (records written before a reshard stay on the
			// parent shards, so the shard is not checked against the
			// current map).
			count := map[string]int{}
			for _, u := range stored {
				count[string(u.Data)]++
			}
			for i := range workers * per {
				if c := count[fmt.Sprintf("rec-%06d", i)]; c != 1 {
					t.Fatalf("rec-%06d stored %d times", i, c)
				}
			}
			if len(stored) != workers*per {
				t.Fatalf("%d user records stored, want %d", len(stored), workers*per)
			}
			// Records landing on other shards than predicted refresh the
			// map, in the background.
			wait.For(t, 5*time.Second, "the shard map refreshed after the reshards", func() bool { return p.shards.Load().version >= 2 })
			if err := p.Close(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestChaosCloseWithDeadline closes the producer with a short deadline while
// records are being retried: every callback runs exactly once, by the time
// Close returns, and a record reported written is stored where its result
// says.
func TestChaosCloseWithDeadline(t *testing.T) {
	for seed := range uint64(5) {
		var mu sync.Mutex
		r := rand.New(rand.NewPCG(seed, 3))
		f := newStreamOf(t, kinesistest.Config{
			StreamName: "s", Shards: 2,
			EntryFault: func(kinesistest.PutEntry) string {
				mu.Lock()
				defer mu.Unlock()
				if r.IntN(4) == 0 {
					return "InternalFailure"
				}
				return ""
			},
			Fault: faultOn(kinesistest.OpPutRecords, func(int) error {
				time.Sleep(time.Millisecond)
				return nil
			}),
		})
		p, err := New(Config{Stream: "s", Kinesis: f, AggregationMaxSize: 300, CollectionMaxCount: 10,
			RecordMaxBufferedTime: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond,
			MaxConnections: 2})
		if err != nil {
			t.Fatal(err)
		}
		const n = 2000
		res := putMany(t, p, n, randomKey)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seed+1)*5*time.Millisecond)
		closeErr := p.Close(ctx)
		cancel()
		res.mu.Lock()
		got := len(res.byID)
		res.mu.Unlock()
		if got != n {
			t.Fatalf("seed %d: %d of %d callbacks called when Close returned", seed, got, n)
		}
		stored := map[string]kinesistest.UserRecord{}
		for _, u := range f.UserRecords() {
			stored[fmt.Sprintf("%s/%s/%d", u.ShardID, u.SequenceNumber, u.SubSequenceNumber)] = u
		}
		failed := 0
		for id, r := range res.byID {
			if r.Err != nil {
				if !errors.Is(r.Err, ErrClosed) {
					t.Fatalf("seed %d: %s: %v, want ErrClosed", seed, id, r.Err)
				}
				failed++
				continue
			}
			if u := stored[fmt.Sprintf("%s/%s/%d", r.ShardID, r.SequenceNumber, r.SubSequenceNumber)]; string(u.Data) != id {
				t.Fatalf("seed %d: %s reported written at %s %s/%d, where the stream holds %+v", seed, id, r.ShardID, r.SequenceNumber, r.SubSequenceNumber, u)
			}
		}
		if (failed > 0) != (closeErr != nil) {
			t.Fatalf("seed %d: %d records failed, Close = %v", seed, failed, closeErr)
		}
		count := map[string]int{}
		for _, u := range stored {
			count[string(u.Data)]++
			if count[string(u.Data)] > 1 {
				t.Fatalf("seed %d: %s stored twice", seed, u.Data)
			}
		}
		t.Logf("seed %d: %d of %d failed by Close (%v)", seed, failed, n, closeErr)
	}
}
