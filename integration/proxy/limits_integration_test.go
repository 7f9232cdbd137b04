package proxy_test

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

// decisionWindow is a clock for Config.Now that remembers the first and
// last time the limiter asked for it: the span over which the token
// buckets made their decisions.
type decisionWindow struct {
	mu          sync.Mutex
	first, last time.Time
}

func (w *decisionWindow) Now() time.Time {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.first.IsZero() {
		w.first = now
	}
	w.last = now
	return now
}

func (w *decisionWindow) Seconds() float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last.Sub(w.first).Seconds()
}

// within reports whether got is within frac of want.
func within(got, want, frac float64) bool { return math.Abs(got-want) <= frac*want }

// entries returns n PutRecords entries of size bytes whose data starts with
// tag and the entry's index, with distinct partition keys.
func entries(tag string, from, n, size int) []types.PutRecordsRequestEntry {
	out := make([]types.PutRecordsRequestEntry, n)
	for i := range out {
		d := bytes.Repeat([]byte{'.'}, size)
		copy(d, fmt.Sprintf("%s-%06d-", tag, from+i))
		out[i] = types.PutRecordsRequestEntry{Data: d, PartitionKey: aws.String(fmt.Sprintf("pk-%d", from+i))}
	}
	return out
}

// putResult is one entry's outcome.
type putOutcome struct {
	data []byte
	res  types.PutRecordsResultEntry
}

// putBatches sends the batches concurrently (all at once) and returns each
// entry's outcome in send order, checking FailedRecordCount.
func putBatches(t *testing.T, client *kinesis.Client, stream string, batches [][]types.PutRecordsRequestEntry, concurrent bool) [][]putOutcome {
	t.Helper()
	ctx := ctxT(t)
	out := make([][]putOutcome, len(batches))
	errs := make([]error, len(batches))
	send := func(i int) {
		res, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: batches[i]})
		if err != nil {
			errs[i] = err
			return
		}
		if len(res.Records) != len(batches[i]) {
			errs[i] = fmt.Errorf("batch %d: %d results for %d entries", i, len(res.Records), len(batches[i]))
			return
		}
		failed := 0
		for j, r := range res.Records {
			out[i] = append(out[i], putOutcome{batches[i][j].Data, r})
			if r.ErrorCode != nil {
				failed++
			}
		}
		if int(aws.ToInt32(res.FailedRecordCount)) != failed {
			errs[i] = fmt.Errorf("batch %d: FailedRecordCount %d, but %d entries carry an ErrorCode", i, aws.ToInt32(res.FailedRecordCount), failed)
		}
	}
	if concurrent {
		var wg sync.WaitGroup
		for i := range batches {
			wg.Go(func() { send(i) })
		}
		wg.Wait()
	} else {
		for i := range batches {
			send(i)
		}
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// tally counts outcomes by error code ("" for accepted).
func tally(t *testing.T, outs [][]putOutcome) map[string]int {
	t.Helper()
	m := map[string]int{}
	for _, b := range outs {
		for _, o := range b {
			code := aws.ToString(o.res.ErrorCode)
			m[code]++
			if code == "" && (o.res.SequenceNumber == nil || o.res.ShardId == nil) {
				t.Fatalf("accepted entry without SequenceNumber or ShardId: %+v", o.res)
			}
			if code != "" && o.res.SequenceNumber != nil {
				t.Fatalf("failed entry with a SequenceNumber: %+v", o.res)
			}
		}
	}
	return m
}

// readAll reads every record of a 1-shard stream straight from the
// emulator (not through the proxy), until want records have arrived and
// one more read finds nothing new.
func readAll(t *testing.T, stream string, want int) []types.Record {
	t.Helper()
	client := testenv.KinesisClient(t)
	ctx := ctxT(t)
	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var recs []types.Record
	for _, sh := range shards.Shards {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for empty := 0; iter != nil && empty < 2; {
			out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, out.Records...)
			iter = out.NextShardIterator
			if len(out.Records) == 0 && (len(recs) >= want || aws.ToInt64(out.MillisBehindLatest) == 0) {
				empty++
			}
		}
	}
	return recs
}

// checkReadable checks that exactly the accepted entries are in the stream,
// each at the sequence number its result named, and each batch's accepted
// entries in the batch's order.
func checkReadable(t *testing.T, stream string, outs [][]putOutcome) {
	t.Helper()
	accepted := 0
	for _, b := range outs {
		for _, o := range b {
			if o.res.ErrorCode == nil {
				accepted++
			}
		}
	}
	recs := readAll(t, stream, accepted)
	if len(recs) != accepted {
		t.Fatalf("read %d records from the stream, want exactly the %d accepted", len(recs), accepted)
	}
	bySeq := make(map[string]int, len(recs)) // sequence number -> position in the stream
	for i, r := range recs {
		bySeq[aws.ToString(r.SequenceNumber)] = i
	}
	for bi, b := range outs {
		last := -1
		for _, o := range b {
			if o.res.ErrorCode != nil {
				continue
			}
			pos, ok := bySeq[aws.ToString(o.res.SequenceNumber)]
			if !ok {
				t.Fatalf("batch %d: accepted %q at sequence number %s, not in the stream", bi, o.data[:16], aws.ToString(o.res.SequenceNumber))
			}
			if !bytes.Equal(recs[pos].Data, o.data) {
				t.Fatalf("batch %d: sequence number %s holds %q, want %q", bi, aws.ToString(o.res.SequenceNumber), recs[pos].Data[:16], o.data[:16])
			}
			if pos <= last {
				t.Fatalf("batch %d: %q out of order in the stream", bi, o.data[:16])
			}
			last = pos
		}
	}
}

// TestRecordRateLimit sends 3,000 records of 100 B to a one-shard stream,
// as six PutRecords calls at once: about one second of credit (1,000
// records, plus the refill while the proxy decides) is accepted, the rest
// rejected per entry, and exactly the accepted records are in the stream.
func TestRecordRateLimit(t *testing.T) {
	var clock decisionWindow
	p := proxy.StartForTest(t, proxy.Config{Now: clock.Now})
	client := kinesisNoRetry(t, p)
	stream := testenv.CreateStream(t, client, 1)

	var batches [][]types.PutRecordsRequestEntry
	for i := 0; i < 3000; i += 500 {
		batches = append(batches, entries("rate", i, 500, 100))
	}
	outs := putBatches(t, client, stream, batches, true)
	counts := tally(t, outs)
	accepted, rejected := counts[""], counts["ProvisionedThroughputExceededException"]
	want := 1000 * (1 + clock.Seconds())
	t.Logf("accepted %d, rejected %d; decisions over %.3fs, expected %.0f accepted", accepted, rejected, clock.Seconds(), want)
	if accepted+rejected != 3000 {
		t.Errorf("outcomes %v, want only accepted and ProvisionedThroughputExceededException", counts)
	}
	if !within(float64(accepted), want, 0.15) {
		t.Errorf("accepted %d, want %.0f ± 15%%", accepted, want)
	}
	if s := p.Stats(); s.Records != int64(accepted) || s.Throttled != int64(rejected) {
		t.Errorf("Stats %+v, want Records %d and Throttled %d", s, accepted, rejected)
	}
	checkReadable(t, stream, outs)
}

// TestRecordRateLimitSink is TestRecordRateLimit in sink mode, with the
// calls sent one after another as fast as possible: with no emulator
// behind, acceptance follows the token bucket over the whole run.
func TestRecordRateLimitSink(t *testing.T) {
	var clock decisionWindow
	p := proxy.StartForTest(t, proxy.Config{Sink: true, Now: clock.Now})
	client := kinesisNoRetry(t, p)
	stream := testenv.CreateStream(t, client, 1)
	var batches [][]types.PutRecordsRequestEntry
	for i := 0; i < 3000; i += 500 {
		batches = append(batches, entries("sink", i, 500, 100))
	}
	counts := tally(t, putBatches(t, client, stream, batches, false))
	accepted := counts[""]
	want := 1000 * (1 + clock.Seconds())
	t.Logf("accepted %d of 3000; decisions over %.3fs, expected %.0f", accepted, clock.Seconds(), want)
	if accepted+counts["ProvisionedThroughputExceededException"] != 3000 || !within(float64(accepted), want, 0.15) {
		t.Errorf("outcomes %v, want %.0f ± 15%% accepted and the rest throttled", counts, want)
	}
}

// TestByteRateLimit sends 2 MiB of 50 KiB records to one shard in one call:
// about 1 MiB is accepted.
func TestByteRateLimit(t *testing.T) {
	var clock decisionWindow
	p := proxy.StartForTest(t, proxy.Config{Now: clock.Now})
	client := kinesisNoRetry(t, p)
	stream := testenv.CreateStream(t, client, 1)
	batch := entries("bytes", 0, 41, 50<<10) // 2,050 KiB
	outs := putBatches(t, client, stream, [][]types.PutRecordsRequestEntry{batch}, false)
	counts := tally(t, outs)
	acceptedBytes := float64(counts[""] * (50<<10 + len("pk-00")))
	want := (1 << 20) * (1 + clock.Seconds())
	t.Logf("accepted %d records (%.0f B) of 41; expected %.0f B", counts[""], acceptedBytes, want)
	if !within(acceptedBytes, want, 0.15) {
		t.Errorf("accepted %.0f bytes, want %.0f ± 15%%", acceptedBytes, want)
	}
	checkReadable(t, stream, outs)
}

// TestInternalFailureFaults fails PutRecords entries with probability 0.1:
// 5,000 entries give 500 ± 100 failures, the same ones again with the same
// seed and different ones with another seed.
func TestInternalFailureFaults(t *testing.T) {
	run := func(seed int64) []bool {
		p := proxy.StartForTest(t, proxy.Config{Sink: true, NoLimits: true, Seed: seed,
			Kinesis: proxy.KinesisFaults{InternalFailure: 0.1}})
		client := kinesisNoRetry(t, p)
		stream := testenv.CreateStream(t, client, 1)
		var batches [][]types.PutRecordsRequestEntry
		for i := 0; i < 5000; i += 500 {
			batches = append(batches, entries("fault", i, 500, 10))
		}
		var failed []bool
		for _, b := range putBatches(t, client, stream, batches, false) {
			for _, o := range b {
				code := aws.ToString(o.res.ErrorCode)
				if code != "" && code != "InternalFailure" {
					t.Fatalf("unexpected ErrorCode %q", code)
				}
				failed = append(failed, code != "")
			}
		}
		return failed
	}
	count := func(f []bool) (n int) {
		for _, v := range f {
			if v {
				n++
			}
		}
		return n
	}
	a, b, c := run(42), run(42), run(7)
	t.Logf("failed entries: seed 42: %d, %d; seed 7: %d", count(a), count(b), count(c))
	if n := count(a); n < 400 || n > 600 {
		t.Errorf("%d of 5000 entries failed, want 500 ± 100", n)
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("the same seed failed different entries")
	}
	if fmt.Sprint(a) == fmt.Sprint(c) {
		t.Error("different seeds failed the same entries")
	}
}

// TestInternalFailureForwarded checks, in normal mode, that entries failed
// by a fault are not written and the others are, at their sequence numbers.
func TestInternalFailureForwarded(t *testing.T) {
	p := proxy.StartForTest(t, proxy.Config{Seed: 1, Kinesis: proxy.KinesisFaults{InternalFailure: 0.3}})
	client := kinesisNoRetry(t, p)
	stream := testenv.CreateStream(t, client, 1)
	outs := putBatches(t, client, stream, [][]types.PutRecordsRequestEntry{entries("if", 0, 200, 20)}, false)
	counts := tally(t, outs)
	if counts["InternalFailure"] == 0 || counts[""] == 0 || counts[""]+counts["InternalFailure"] != 200 {
		t.Fatalf("outcomes %v, want some InternalFailure and the rest accepted", counts)
	}
	checkReadable(t, stream, outs)
}

// TestReadLimits checks the 5 calls/s and the byte limit of GetRecords with
// a clock the test moves.
func TestReadLimits(t *testing.T) {
	clock := testenv.NewClock(time.Unix(1e9, 0))
	p := proxy.StartForTest(t, proxy.Config{Now: clock.Now, Limits: proxy.Limits{ReadBytesPerSecond: 3000}})
	client := kinesisNoRetry(t, p)
	stream := testenv.CreateStream(t, client, 1)
	ctx := ctxT(t)
	for i := range 2 {
		if _, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream),
			PartitionKey: aws.String("k"), Data: bytes.Repeat([]byte{byte('a' + i)}, 2000)}); err != nil {
			t.Fatal(err)
		}
	}
	shardIter := func() *string {
		out, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
		if err != nil {
			t.Fatal(err)
		}
		return out.ShardIterator
	}
	isThrottled := func(err error) bool {
		var pte *types.ProvisionedThroughputExceededException
		if err != nil && !errorsAs(err, &pte) {
			t.Fatalf("GetRecords: %v", err)
		}
		return err != nil
	}

	// Calls: 5 pass at once, the 6th is throttled; 200 ms later one more passes.
	iter := shardIter()
	for i := range 6 {
		out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if got := isThrottled(err); got != (i == 5) {
			t.Fatalf("call %d: throttled %v", i+1, got)
		}
		if err == nil {
			iter = out.NextShardIterator
		}
	}
	clock.Advance(200 * time.Millisecond)
	if _, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter}); isThrottled(err) {
		t.Fatal("call after 200 ms throttled")
	}

	// Bytes: reading 4,000 B with 3,000 B/s of credit leaves a 1,000 B debt:
	// the next calls are throttled until 1/3 s has paid it back.
	clock.Advance(2 * time.Second)
	it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	out, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(out.Records) != 2 {
		t.Fatalf("GetRecords: %d records, %v; want 2", len(out.Records), err)
	}
	next := out.NextShardIterator
	if _, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next}); !isThrottled(err) {
		t.Fatal("call right after the debt: not throttled")
	}
	clock.Advance(300 * time.Millisecond)
	if _, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next}); !isThrottled(err) {
		t.Fatal("call 300 ms after a 1/3 s debt: not throttled")
	}
	clock.Advance(100 * time.Millisecond)
	if _, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: next}); isThrottled(err) {
		t.Fatal("call after the debt was paid: throttled")
	}
}

// TestReshardRefreshesShardMap splits the only shard through the proxy and
// checks, in sink mode, that records are then placed in the children.
func TestReshardRefreshesShardMap(t *testing.T) {
	p := proxy.StartForTest(t, proxy.Config{Sink: true})
	client := kinesisNoRetry(t, p)
	stream := testenv.CreateStream(t, client, 1)
	ctx := ctxT(t)
	put := func(key string) string {
		out, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream),
			PartitionKey: aws.String("k"), ExplicitHashKey: aws.String(key), Data: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.ShardId)
	}
	if got := put("0"); got != "shardId-000000000000" {
		t.Fatalf("before the split: shard %s", got)
	}
	if _, err := client.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(stream),
		ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatal(err)
	}
	if err := testenv.WaitStreamActive(ctx, testenv.KinesisClient(t), stream); err != nil {
		t.Fatal(err)
	}
	// The proxy lists the shards again within its short post-resharding TTL.
	var low, high string
	if !wait.Until(10*time.Second, func() bool {
		low, high = put("0"), put("340282366920938463463374607431768211455")
		return low == "shardId-000000000001" && high == "shardId-000000000002"
	}) {
		t.Fatalf("after the split: shards %s and %s, want the children", low, high)
	}
}

func TestUnknownStreamPassesUpstreamError(t *testing.T) {
	for _, sink := range []bool{false, true} {
		p := proxy.StartForTest(t, proxy.Config{Sink: sink})
		client := kinesisNoRetry(t, p)
		_, err := client.PutRecord(ctxT(t), &kinesis.PutRecordInput{StreamName: aws.String("no-such-stream-" + strings.Repeat("x", 8)),
			PartitionKey: aws.String("k"), Data: []byte("x")})
		var nf *types.ResourceNotFoundException
		if !errorsAs(err, &nf) {
			t.Errorf("sink %v: PutRecord to a missing stream: %v, want ResourceNotFoundException", sink, err)
		}
	}
}
