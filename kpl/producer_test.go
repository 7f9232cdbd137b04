package kpl

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
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

func newProducer(t *testing.T, f *fakeKinesis, cfg Config) *Producer {
	t.Helper()
	cfg.Stream = "test"
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

func TestValidateRejectsBadRecords(t *testing.T) {
	f := newFake(1)
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

func TestConfigValidate(t *testing.T) {
	bad := []Config{
		{},
		{Stream: "s", CollectionMaxCount: 501},
		{Stream: "s", CollectionMaxSize: 6 << 20},
		{Stream: "s", AggregationMaxSize: 1 << 20},
		{Stream: "s", MaxRecordSize: 11 << 20},
		{Stream: "s", RateLimit: -1},
		{Stream: "s", MinBackoff: time.Second, MaxBackoff: time.Millisecond},
		{Stream: "s", Compression: aggregation.Compression(7)},
		{Stream: "s", MaxBufferedBytes: 10},
		{Stream: "s", RecordTTL: -1},
	}
	for _, c := range bad {
		if err := c.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil", c)
		}
	}
	for _, arn := range []string{"arn:aws:kinesis:us-east-1:123456789012:table/t", "arn:aws:s3:::bucket", "arn:aws:kinesis:us-east-1:123456789012:stream/"} {
		if err := (Config{Stream: arn}).Validate(); err == nil || !strings.Contains(err.Error(), "Config.Stream") {
			t.Errorf("Validate with Stream %q = %v, want an error naming Config.Stream", arn, err)
		}
	}
	for _, stream := range []string{"s", "arn:aws:kinesis:us-east-1:123456789012:stream/s"} {
		if err := (Config{Stream: stream}).Validate(); err != nil {
			t.Fatal(err)
		}
	}
	d := Config{Stream: "s"}.withDefaults()
	if d.AggregationMaxSize != 51200 || d.CollectionMaxCount != 500 || d.CollectionMaxSize != 5<<20 ||
		d.RecordMaxBufferedTime != 100*time.Millisecond || d.RecordTTL != 30*time.Second || d.RateLimit != 150 || d.MaxConnections != 24 {
		t.Fatalf("defaults: %+v", d)
	}
}

func TestShardLookup(t *testing.T) {
	f := newFake(4)
	p := newProducer(t, f, Config{})
	out, _ := f.ListShards(context.Background(), &kinesis.ListShardsInput{})
	p.install(out.Shards)
	m := p.shards.Load()
	r := rand.New(rand.NewPCG(1, 1))
	for i := 0; i < 2000; i++ {
		k := hashkey.Key{Hi: r.Uint64(), Lo: r.Uint64()}
		if i == 0 {
			k = hashkey.Key{}
		} else if i == 1 {
			k = hashkey.Max
		}
		s := m.lookup(k)
		if !s.rng.Contains(k) || s.id != f.route(k) {
			t.Fatalf("key %v: predicted %s %v, fake routes to %s", k, s.id, s.rng, f.route(k))
		}
	}
}

func TestListShardsPaginates(t *testing.T) {
	f := newFake(5)
	f.pageLen = 2
	p := newProducer(t, f, Config{})
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	if n := len(p.shards.Load().shards); n != 5 {
		t.Fatalf("%d shards in the map, want 5", n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.listInputs) < 3 {
		t.Fatalf("%d ListShards calls, want 3 pages", len(f.listInputs))
	}
	first := f.listInputs[0]
	if first.ShardFilter == nil || first.ShardFilter.Type != types.ShardFilterTypeAtLatest || aws.ToString(first.StreamName) != "test" {
		t.Fatalf("first page input %+v", first)
	}
	for _, in := range f.listInputs[1:3] {
		if in.NextToken == nil || in.StreamName != nil || in.ShardFilter != nil {
			t.Fatalf("later page input %+v", in)
		}
	}
}

// putRecorder records the PutRecords inputs it passes on to the fake.
type putRecorder struct {
	*fakeKinesis
	putsMu sync.Mutex
	puts   []kinesis.PutRecordsInput
}

func (r *putRecorder) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	r.putsMu.Lock()
	r.puts = append(r.puts, *in)
	r.putsMu.Unlock()
	return r.fakeKinesis.PutRecords(ctx, in, opts...)
}

// A producer given a stream ARN names the stream by StreamARN, and not by
// StreamName, in every call.
func TestStreamARN(t *testing.T) {
	const arn = "arn:aws:kinesis:us-east-1:123456789012:stream/events"
	f := &putRecorder{fakeKinesis: newFake(2)}
	f.pageLen = 1
	reg := prometheus.NewRegistry()
	p, err := New(Config{Stream: arn, Kinesis: f, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	lists := f.listInputs
	f.mu.Unlock()
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

// checkExactlyOnce checks that the fake holds every record id of n exactly
// once, on the shard its key maps to.
func checkExactlyOnce(t *testing.T, f *fakeKinesis, n int, keyOf func(i int) string) []userRecord {
	t.Helper()
	got := f.readBack()
	seen := map[string]int{}
	for _, u := range got {
		seen[u.Data]++
		var i int
		fmt.Sscanf(u.Data, "rec-%d", &i)
		if u.PartitionKey != keyOf(i) {
			t.Fatalf("%s has key %q, want %q", u.Data, u.PartitionKey, keyOf(i))
		}
		if want := f.route(hashkey.FromPartitionKey(u.PartitionKey)); want != u.ShardID {
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

func TestAggregatesPerShard(t *testing.T) {
	f := newFake(3)
	reg := prometheus.NewRegistry()
	p := newProducer(t, f, Config{Metrics: reg, AggregationMaxSize: 4000})
	const n = 3000
	res := putMany(t, p, n, randomKey)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	checkExactlyOnce(t, f, n, randomKey)
	for id, r := range res.byID {
		if r.Err != nil || r.ShardID == "" || r.SequenceNumber == "" || r.Attempts != 1 {
			t.Fatalf("%s: %+v", id, r)
		}
	}
	// Aggregated records: partition key "a", an explicit hash key in the
	// shard's range, at most AggregationMaxSize bytes.
	f.mu.Lock()
	kinesisRecords := 0
	for id, recs := range f.stored {
		for _, r := range recs {
			kinesisRecords++
			if _, ok := aggregation.Decode(r.Data); !ok {
				continue
			}
			if r.PartitionKey != "a" || len(r.Data) > 4000 {
				t.Errorf("aggregated record with key %q, %d bytes", r.PartitionKey, len(r.Data))
			}
			if f.route(hashkey.MustParse(r.ExplicitHashKey)) != id {
				t.Errorf("explicit hash key %s not in %s", r.ExplicitHashKey, id)
			}
		}
	}
	f.mu.Unlock()
	if kinesisRecords*10 > n {
		t.Fatalf("%d Kinesis records for %d user records: not aggregated", kinesisRecords, n)
	}
	if got := testutil.ToFloat64(p.metrics.userRecords); got != n {
		t.Fatalf("user records metric %v, want %d", got, n)
	}
	if got := testutil.ToFloat64(p.metrics.kinesisRecords); int(got) != kinesisRecords {
		t.Fatalf("kinesis records metric %v, want %d", got, kinesisRecords)
	}
}

func TestSingleRecordSentRaw(t *testing.T) {
	f := newFake(2)
	p := newProducer(t, f, Config{})
	r, err := p.PutSync(context.Background(), Record{PartitionKey: "only", ExplicitHashKey: "5", Data: []byte("alone")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Aggregated || r.ShardID != "shardId-000000000000" {
		t.Fatalf("result %+v", r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	got := f.stored["shardId-000000000000"]
	if len(got) != 1 || string(got[0].Data) != "alone" || got[0].PartitionKey != "only" || got[0].ExplicitHashKey != "5" {
		t.Fatalf("stored %+v", got)
	}
}

func TestDisableAggregation(t *testing.T) {
	f := newFake(2)
	p := newProducer(t, f, Config{DisableAggregation: true})
	res := putMany(t, p, 600, randomKey)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	checkExactlyOnce(t, f, 600, randomKey)
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.stored["shardId-000000000000"]) + len(f.stored["shardId-000000000001"]); n != 600 {
		t.Fatalf("%d Kinesis records, want 600", n)
	}
	if f.putCalls < 2 {
		t.Fatalf("%d PutRecords calls for 600 entries (max 500 each)", f.putCalls)
	}
}

func TestRetriesFailedEntries(t *testing.T) {
	f := newFake(2)
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(5, 5))
	f.entryFault = func(call, entry int) string {
		mu.Lock()
		defer mu.Unlock()
		switch x := r.IntN(10); {
		case x < 2:
			return "ProvisionedThroughputExceededException"
		case x < 4:
			return "InternalFailure"
		}
		return ""
	}
	p := newProducer(t, f, Config{AggregationMaxSize: 300, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	const n = 2000
	res := putMany(t, p, n, randomKey)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	checkExactlyOnce(t, f, n, randomKey)
	retried := 0
	for id, r := range res.byID {
		if r.Err != nil {
			t.Fatalf("%s failed: %v", id, r.Err)
		}
		if r.Attempts > 1 {
			retried++
		}
	}
	if retried == 0 || testutil.ToFloat64(p.metrics.retried) == 0 || testutil.ToFloat64(p.metrics.throttled) == 0 {
		t.Fatalf("no retries seen: %d records with attempts > 1", retried)
	}
}

func serverError() error {
	return &smithy.GenericAPIError{Code: "InternalFailure", Message: "boom", Fault: smithy.FaultServer}
}

func TestRetriesFailedCalls(t *testing.T) {
	f := newFake(2)
	f.callFault = func(call int) error {
		switch {
		case call < 2:
			return serverError()
		case call < 4:
			return errors.New("connection reset by peer")
		}
		return nil
	}
	p := newProducer(t, f, Config{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	res := putMany(t, p, 100, randomKey)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	checkExactlyOnce(t, f, 100, randomKey)
}

func TestNonRetryableFailsAtOnce(t *testing.T) {
	for name, err := range map[string]error{
		"not found":     &types.ResourceNotFoundException{Message: aws.String("no stream")},
		"access denied": &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no", Fault: smithy.FaultClient},
		"http 400": &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &httpResponse400},
			Err: errors.New("ValidationException")},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFake(1)
			f.callFault = func(int) error { return err }
			p := newProducer(t, f, Config{})
			r, got := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
			if !errors.Is(got, err) || r.Attempts != 1 {
				t.Fatalf("PutSync = %+v, %v; want %v after 1 attempt", r, got, err)
			}
		})
	}
	t.Run("entry error", func(t *testing.T) {
		f := newFake(1)
		f.entryFault = func(int, int) string { return "KMSAccessDeniedException" }
		p := newProducer(t, f, Config{})
		_, got := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
		var ee *EntryError
		if !errors.As(got, &ee) || ee.Code != "KMSAccessDeniedException" {
			t.Fatalf("err = %v", got)
		}
	})
}

func TestRecordTTL(t *testing.T) {
	f := newFake(1)
	f.entryFault = func(int, int) string { return "ProvisionedThroughputExceededException" }
	p := newProducer(t, f, Config{RecordTTL: 200 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	res := putMany(t, p, 50, randomKey)
	res.wait(t, 5*time.Second)
	for id, r := range res.byID {
		var ee *EntryError
		if !errors.Is(r.Err, ErrRecordExpired) || !errors.As(r.Err, &ee) || r.Attempts < 1 {
			t.Fatalf("%s: %+v, want ErrRecordExpired wrapping the throttling error", id, r)
		}
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(p.metrics.expired); got != 50 {
		t.Fatalf("expired metric %v", got)
	}
	if p.buffered() != 0 {
		t.Fatalf("%d still buffered", p.buffered())
	}
}

func TestRecordTTLWithoutShardMap(t *testing.T) {
	f := newFake(1)
	f.shards = nil // ListShards never gives a usable map
	p := newProducer(t, f, Config{RecordTTL: 100 * time.Millisecond})
	_, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
	if !errors.Is(err, ErrRecordExpired) {
		t.Fatalf("err = %v", err)
	}
}

func TestPreserveOrder(t *testing.T) {
	f := newFake(2)
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(9, 9))
	f.entryFault = func(call, entry int) string {
		mu.Lock()
		defer mu.Unlock()
		if r.IntN(100) < 10 {
			return "InternalFailure"
		}
		return ""
	}
	p := newProducer(t, f, Config{PreserveOrder: true, AggregationMaxSize: 500, RecordMaxBufferedTime: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 3 * time.Millisecond})
	const n = 3000
	keyOf := func(i int) string { return fmt.Sprintf("k%d", i%20) }
	res := putMany(t, p, n, keyOf)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	got := checkExactlyOnce(t, f, n, keyOf)
	last := map[string]string{}
	for _, u := range got { // per shard in sequence order
		if prev, ok := last[u.PartitionKey]; ok && prev > u.Data {
			t.Fatalf("key %s: %s written after %s", u.PartitionKey, u.Data, prev)
		}
		last[u.PartitionKey] = u.Data
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.maxInflight != 1 || f.entriesPerShardMax != 1 {
		t.Fatalf("max in flight per shard %d, max entries per shard per request %d; want 1 and 1", f.maxInflight, f.entriesPerShardMax)
	}
}

func TestBackpressure(t *testing.T) {
	f := newFake(1)
	f.gate = make(chan struct{})
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
	close(f.gate)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	res.wait(t, 5*time.Second)
}

func TestCloseFailsWhatCannotBeSent(t *testing.T) {
	f := newFake(1)
	f.gate = make(chan struct{}) // never opened
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
}

func TestCloseFlushes(t *testing.T) {
	f := newFake(2)
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

func TestReshardRefreshesShardMap(t *testing.T) {
	f := newFake(1)
	p := newProducer(t, f, Config{RecordMaxBufferedTime: time.Millisecond, MinBackoff: time.Millisecond})
	res := putMany(t, p, 200, randomKey)
	res.wait(t, 5*time.Second)
	// Split: two children replace the shard.
	f.setShards(evenShards(2, 1))
	keyOf := func(i int) string { return randomKey(i + 200) }
	deadline := time.Now().Add(10 * time.Second)
	for {
		res := putMany(t, p, 200, keyOf)
		res.wait(t, 5*time.Second)
		m := p.shards.Load()
		if len(m.shards) == 2 && m.shards[0].id == "shardId-000000000001" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("shard map not refreshed after the split")
		}
	}
	// Now predictions match: aggregated records hold only their shard's keys.
	before := f.readBack()
	res = putMany(t, p, 500, keyOf)
	res.wait(t, 5*time.Second)
	after := f.readBack()
	seen := map[string]bool{}
	for _, u := range before {
		seen[u.Data+u.Seq] = true
	}
	n := 0
	for _, u := range after {
		if seen[u.Data+u.Seq] {
			continue
		}
		n++
		if want := f.route(hashkey.FromPartitionKey(u.PartitionKey)); want != u.ShardID {
			t.Fatalf("after refresh: %s on %s, key maps to %s", u.Data, u.ShardID, want)
		}
	}
	if n != 500 {
		t.Fatalf("%d new records, want 500", n)
	}
}

func TestBucket(t *testing.T) {
	b := bucket{rate: 1000}
	if ok, _ := b.ready(1000, 0); !ok {
		t.Fatal("full bucket refused its capacity")
	}
	b.take(1000)
	ok, at := b.ready(500, 0)
	if ok || at < int64(500*time.Millisecond) || at > int64(501*time.Millisecond) {
		t.Fatalf("empty bucket: ok %v, ready at %v", ok, time.Duration(at))
	}
	if ok, _ := b.ready(500, int64(500*time.Millisecond)); !ok {
		t.Fatal("refilled bucket refused")
	}
	// More than the capacity: allowed from a full bucket, leaving a debt.
	b2 := bucket{rate: 10}
	if ok, _ := b2.ready(50, 0); !ok {
		t.Fatal("oversized take refused from a full bucket")
	}
	b2.take(50)
	if ok, _ := b2.ready(1, int64(time.Second)); ok {
		t.Fatal("debt not kept")
	}
}

// A shard whose records keep failing waits before each retry a random time
// up to MinBackoff·2^(failures-1), capped at MaxBackoff (full jitter).
func TestRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failing = 8
		f := newFake(1)
		var calls []time.Time
		f.entryFault = func(call, entry int) string { // f.mu is held
			calls = append(calls, time.Now())
			if call < failing {
				return "InternalFailure"
			}
			return ""
		}
		p := newProducer(t, f, Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, RecordTTL: time.Hour})
		r, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
		if err != nil || r.Attempts != failing+1 {
			t.Fatalf("PutSync = %+v, %v; want success after %d attempts", r, err, failing+1)
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		var waited time.Duration
		for i := 1; i < len(calls); i++ {
			ceiling := min(100*time.Millisecond<<(i-1), time.Second)
			if gap := calls[i].Sub(calls[i-1]); gap < 0 || gap > ceiling {
				t.Errorf("retry %d came %v after the failure, want at most %v", i, gap, ceiling)
			}
			waited += calls[i].Sub(calls[i-1])
		}
		if waited == 0 {
			t.Error("no retry waited")
		}
	})
}

var httpResponse400 = http.Response{StatusCode: http.StatusBadRequest}

func TestCompression(t *testing.T) {
	for _, c := range []aggregation.Compression{aggregation.Gzip, aggregation.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			f := newFake(1)
			p := newProducer(t, f, Config{Compression: c})
			res := putMany(t, p, 500, randomKey)
			if err := p.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			res.wait(t, time.Second)
			checkExactlyOnce(t, f, 500, randomKey) // readBack decodes compressed records
			f.mu.Lock()
			defer f.mu.Unlock()
			compressed := 0
			for _, r := range f.stored["shardId-000000000000"] {
				if aggregation.IsContainer(r.Data) && r.Data[3] != aggregation.Magic()[3] {
					compressed++
				}
			}
			if compressed == 0 {
				t.Fatal("no compressed aggregated records written")
			}
		})
	}
}

func TestMetricsRegistered(t *testing.T) {
	f := newFake(1)
	reg := prometheus.NewRegistry()
	p := newProducer(t, f, Config{Metrics: reg})
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range families {
		names[mf.GetName()] = true
	}
	for _, want := range []string{
		"kinesis_kpl_user_records_put_total", "kinesis_kpl_user_records_failed_total", "kinesis_kpl_user_records_retried_total",
		"kinesis_kpl_user_records_expired_total", "kinesis_kpl_kinesis_records_put_total", "kinesis_kpl_requests_total",
		"kinesis_kpl_bytes_put_total", "kinesis_kpl_throttled_entries_total", "kinesis_kpl_buffered_time_seconds",
		"kinesis_kpl_inflight_requests", "kinesis_kpl_user_records_per_kinesis_record", "kinesis_kpl_buffered_records",
	} {
		if !names[want] {
			t.Errorf("metric %s not registered", want)
		}
	}
	// A second producer for the same stream on the same registry is refused
	// while the first is open.
	if _, err := New(Config{Stream: "test", Kinesis: f, Metrics: reg}); err == nil {
		t.Fatal("second producer registered the same metrics")
	}
}

func TestPreserveOrderAcrossReshard(t *testing.T) {
	f := newFake(1)
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(3, 3))
	f.entryFault = func(call, entry int) string {
		mu.Lock()
		defer mu.Unlock()
		if r.IntN(100) < 10 {
			return "InternalFailure"
		}
		return ""
	}
	f.tracing = true
	p := newProducer(t, f, Config{PreserveOrder: true, AggregationMaxSize: 400, RecordMaxBufferedTime: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 3 * time.Millisecond, minRefreshInterval: time.Millisecond})
	const n = 4000
	keyOf := func(i int) string { return fmt.Sprintf("k%d", i%30) }
	if _, err := p.PutSync(context.Background(), Record{PartitionKey: "first", Data: []byte("rec-")}); err != nil {
		t.Fatal(err) // the first shard map is loaded
	}
	res := newResults(n)
	for i := 0; i < n; i++ {
		if i == n/4 {
			f.setShards(evenShards(2, 1)) // split
		}
		if i == n/2 {
			f.setShards(evenShards(4, 3)) // split both children
		}
		id := fmt.Sprintf("rec-%06d", i)
		if err := p.Put(context.Background(), Record{PartitionKey: keyOf(i), Data: []byte(id)}, res.callback(id)); err != nil {
			t.Fatal(err)
		}
		if i == n/4+100 || i == n/2+100 {
			// Let the producer notice the reshard while records flow.
			want := uint64(2)
			if i > n/2 {
				want = 3
			}
			deadline := time.Now().Add(5 * time.Second)
			for m := p.shards.Load(); m == nil || m.version < want; m = p.shards.Load() {
				if time.Now().After(deadline) {
					p.mu.Lock()
					state := fmt.Sprintf("inflight %d, prev %d, cur %d, buffered %d, refreshes %v", p.inflight.Load(), p.inflightPrev, p.inflightCur, p.buffered(), testutil.ToFloat64(p.metrics.shardMapRefreshes))
					p.mu.Unlock()
					for _, s := range m.shards {
						s.mu.Lock()
						state += fmt.Sprintf("; %s inflight %d sealed %d open %v retryAt %v", s.id, s.inflight, len(s.sealed), s.open != nil, time.Duration(s.retryAt-p.nanotime()))
						s.mu.Unlock()
					}
					f.mu.Lock()
					state += fmt.Sprintf("; fake calls %d list %d", f.putCalls, f.listCalls)
					f.mu.Unlock()
					t.Fatalf("shard map version %d after 5 s, want %d: %s", m.version, want, state)
				}
				runtime.Gosched()
			}
		}
	}
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	got := f.readBack()
	if len(got) != n+1 {
		t.Fatalf("%d records stored, want %d", len(got), n+1)
	}
	// The fake's sequence numbers grow across shards: in that order, each
	// key's records must come in the order they were put.
	sort.Slice(got, func(i, j int) bool {
		if got[i].Seq != got[j].Seq {
			return got[i].Seq < got[j].Seq
		}
		return got[i].Sub < got[j].Sub
	})
	last := map[string]userRecord{}
	for _, u := range got {
		if prev, ok := last[u.PartitionKey]; ok && prev.Data > u.Data {
			for _, l := range f.trace {
				if strings.Contains(l, u.PartitionKey+"=") {
					t.Log(l)
				}
			}
			t.Fatalf("key %s: %+v (%+v) written after %+v (%+v)", u.PartitionKey, u, res.byID[u.Data], prev, res.byID[prev.Data])
		}
		last[u.PartitionKey] = u
	}
	if v := p.shards.Load().version; v != 3 {
		t.Fatalf("shard map version %d, want 3: reshards not noticed", v)
	}
}

func TestShardMapRetriedWithBackoff(t *testing.T) {
	f := newFake(2)
	f.listFault = func(call int) error {
		if call < 3 {
			return &smithy.GenericAPIError{Code: "LimitExceededException", Message: "slow down", Fault: smithy.FaultClient}
		}
		return nil
	}
	reg := prometheus.NewRegistry()
	p := newProducer(t, f, Config{Metrics: reg, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	// Records put before any shard map wait for it, then go out.
	res := putMany(t, p, 100, randomKey)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	checkExactlyOnce(t, f, 100, randomKey)
	if got := testutil.ToFloat64(p.metrics.shardMapErrors); got != 3 {
		t.Fatalf("shard map errors %v, want 3", got)
	}
}

// TestDataIntactWhenMemoryIsReused puts enough data that the chunks records
// are copied into are recycled many times, and checks every record's bytes.
func TestDataIntactWhenMemoryIsReused(t *testing.T) {
	f := newFake(3)
	p := newProducer(t, f, Config{RecordMaxBufferedTime: time.Millisecond})
	const rounds, per = 6, 5000
	payload := func(i int) []byte {
		b := make([]byte, 100)
		copy(b, fmt.Sprintf("rec-%06d", i))
		for j := 10; j < len(b); j++ {
			b[j] = byte(i*31 + j)
		}
		return b
	}
	buf := make([]byte, 100) // reused by the caller between Puts
	for round := 0; round < rounds; round++ {
		for i := round * per; i < (round+1)*per; i++ {
			copy(buf, payload(i))
			if err := p.Put(context.Background(), Record{PartitionKey: randomKey(i), Data: buf}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := p.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got := f.readBack()
	if len(got) != rounds*per {
		t.Fatalf("%d records, want %d", len(got), rounds*per)
	}
	seen := map[int]bool{}
	for _, u := range got {
		var i int
		if _, err := fmt.Sscanf(u.Data[:10], "rec-%06d", &i); err != nil || seen[i] {
			t.Fatalf("bad or repeated record %q", u.Data[:10])
		}
		seen[i] = true
		if u.Data != string(payload(i)) {
			t.Fatalf("record %d corrupted", i)
		}
	}
}

// TestBackoffOfOneShardDoesNotDelayOthers checks that a record for a healthy
// shard goes out at its linger deadline while another shard waits out a
// long backoff.
func TestBackoffOfOneShardDoesNotDelayOthers(t *testing.T) {
	f := newFake(2)
	f.failShard = "shardId-000000000000"
	p := newProducer(t, f, Config{MinBackoff: time.Hour, MaxBackoff: time.Hour, RecordTTL: 2 * time.Hour})
	m := func() *shardMap {
		if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", ExplicitHashKey: maxKey, Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		return p.shards.Load()
	}()
	if err := p.Put(context.Background(), Record{PartitionKey: "k", ExplicitHashKey: "0", Data: []byte("stuck")}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		failed := f.failed
		f.mu.Unlock()
		if failed > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failing shard was never tried")
		}
		time.Sleep(time.Millisecond)
	}
	if s := m.shards[0]; s.id != f.failShard {
		t.Fatalf("first shard %s", s.id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := p.PutSync(ctx, Record{PartitionKey: "k", ExplicitHashKey: maxKey, Data: []byte("healthy")}); err != nil {
		t.Fatalf("record for the healthy shard: %v", err)
	}
	// The stuck record fails at Close.
	cctx, ccancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer ccancel()
	if err := p.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close = %v", err)
	}
}

const maxKey = "340282366920938463463374607431768211455"
