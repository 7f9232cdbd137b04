package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// putPlain writes one plain record per line, in order, each key's records
// in one call so their order holds.
func putPlain(t *testing.T, client *kinesis.Client, stream string, key string, lines ...string) {
	t.Helper()
	entries := make([]kintypes.PutRecordsRequestEntry, len(lines))
	for i, l := range lines {
		entries[i] = kintypes.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: []byte(l)}
	}
	putEntries(t, client, stream, entries)
}

// putAggregated writes lines as one KPL container with partition key key.
func putAggregated(t *testing.T, client *kinesis.Client, stream string, key string, lines ...string) {
	t.Helper()
	var e aggregation.Encoder
	for _, l := range lines {
		e.Add(aggregation.Record{PartitionKey: key, Data: []byte(l)})
	}
	putEntries(t, client, stream, []kintypes.PutRecordsRequestEntry{{PartitionKey: aws.String(key), Data: e.Encode()}})
}

func putEntries(t *testing.T, client *kinesis.Client, stream string, entries []kintypes.PutRecordsRequestEntry) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		t.Fatalf("PutRecords: %v", err)
	}
	if n := aws.ToInt32(out.FailedRecordCount); n > 0 {
		t.Fatalf("PutRecords: %d entries failed", n)
	}
}

func lines(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return out
}

func decodeLines(t *testing.T, out string) []tailRecord {
	t.Helper()
	var recs []tailRecord
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var r tailRecord
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("tail --json line %q: %v", l, err)
		}
		recs = append(recs, r)
	}
	return recs
}

// Records written before and after a split come out deaggregated, each
// once, and per key in the order written: parents before children.
func TestTailAcrossSplit(t *testing.T) {
	t.Parallel()
	client, stream := testenv.NewStream(t, 2)
	keys := []string{"alpha", "beta", "gamma", "delta"}
	want := map[string][]string{}
	for _, k := range keys {
		plain := lines(k+"-plain", 5)
		agg := lines(k+"-agg", 20)
		putPlain(t, client, stream, k, plain...)
		putAggregated(t, client, stream, k, agg...)
		want[k] = append(plain, agg...)
	}
	putEntries(t, client, stream, []kintypes.PutRecordsRequestEntry{{PartitionKey: aws.String("bin"), Data: []byte{0xff, 0xfe, 0x00}}})
	mustRun(t, "split", stream, "0")
	mustRun(t, "split", stream, "1")
	for _, k := range keys {
		after := lines(k+"-after", 5)
		putAggregated(t, client, stream, k, after...)
		want[k] = append(want[k], after...)
	}

	recs := decodeLines(t, mustRun(t, "tail", stream, "--json").stdout)
	got := map[string][]string{}
	shardsOf := map[string]map[string]bool{}
	binary := 0
	for _, r := range recs {
		if r.Data == nil {
			binary++
			if r.DataBase64 != "//4A" || r.PartitionKey != "bin" {
				t.Errorf("binary record: %+v", r)
			}
			continue
		}
		got[r.PartitionKey] = append(got[r.PartitionKey], *r.Data)
		if shardsOf[r.PartitionKey] == nil {
			shardsOf[r.PartitionKey] = map[string]bool{}
		}
		shardsOf[r.PartitionKey][r.Shard] = true
		if strings.Contains(*r.Data, "-agg-") != r.Aggregated && !strings.Contains(*r.Data, "-after-") {
			t.Errorf("record %q: aggregated = %v", *r.Data, r.Aggregated)
		}
	}
	if binary != 1 {
		t.Errorf("got %d binary records, want 1", binary)
	}
	for _, k := range keys {
		if strings.Join(got[k], ",") != strings.Join(want[k], ",") {
			t.Errorf("key %s: got %d records\n%v\nwant %d in order\n%v", k, len(got[k]), got[k], len(want[k]), want[k])
		}
		if len(shardsOf[k]) != 2 {
			t.Errorf("key %s read from shards %v, want a parent and a child", k, shardsOf[k])
		}
	}

	// Plain output: the payloads, one per line; --max stops early.
	plain := strings.Split(strings.TrimSpace(mustRun(t, "tail", stream, "--max", "7").stdout), "\n")
	if len(plain) != 7 {
		t.Errorf("tail --max 7 printed %d lines: %q", len(plain), plain)
	}
	for _, l := range plain {
		if !strings.Contains(l, "-plain-") && !strings.Contains(l, "-agg-") {
			t.Errorf("tail --max 7: unexpected line %q (want records from before the split first)", l)
		}
	}
}

func TestTailFromTimeAndLatest(t *testing.T) {
	t.Parallel()
	client, stream := testenv.NewStream(t, 1)
	putPlain(t, client, stream, "k", lines("old", 3)...)
	// Separate the two batches in time: arrival timestamps are not exact.
	time.Sleep(1100 * time.Millisecond)
	mid := time.Now().UTC()
	time.Sleep(1100 * time.Millisecond)
	putPlain(t, client, stream, "k", lines("new", 3)...)

	got := strings.Fields(mustRun(t, "tail", stream, "--from", mid.Format(time.RFC3339Nano)).stdout)
	if strings.Join(got, ",") != "new-000,new-001,new-002" {
		t.Errorf("tail --from %s: %q", mid.Format(time.RFC3339Nano), got)
	}
	if out := mustRun(t, "tail", stream, "--from", "LATEST").stdout; out != "" {
		t.Errorf("tail --from LATEST without --follow printed %q, want nothing", out)
	}
	wantExit(t, kctl(t, "tail", stream, "--from", "yesterday"), exitUsage, "bad --from")
	wantExit(t, kctl(t, "tail", stream+"-missing"), exitNotFound, "not found")
}

// syncBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTailFollow(t *testing.T) {
	t.Parallel()
	client, stream := testenv.NewStream(t, 1)
	putPlain(t, client, stream, "k", "before")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"tail", stream, "--follow", "--from", "LATEST"}, strings.NewReader(""), &out, &errb)
	}()

	// LATEST is fixed when tail gets its iterator: keep writing until a
	// record shows up, then check the ones after it come in order.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; !strings.Contains(out.String(), "after-"); i++ {
		if time.Now().After(deadline) {
			t.Fatalf("tail --follow printed nothing within 30s; stdout %q stderr %q", out.String(), errb.String())
		}
		putPlain(t, client, stream, "k", fmt.Sprintf("after-%03d", i))
		time.Sleep(200 * time.Millisecond)
	}
	mustRun(t, "split", stream, "0")
	putPlain(t, client, stream, "k", "child-000")
	if !wait.Until(time.Until(deadline), func() bool { return strings.Contains(out.String(), "child-000") }) {
		t.Fatalf("tail --follow did not print the child shard's record within 30s; stdout %q", out.String())
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("tail --follow ended with exit %d after interruption, want 0; stderr %q", c, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tail --follow did not stop within 10s of interruption")
	}
	if strings.Contains(out.String(), "before") {
		t.Errorf("tail --from LATEST printed a record written before it started: %q", out.String())
	}
}

// Records that end with a newline (log lines) are not given a second one;
// --json keeps the data exact.
func TestTailOneLinePerRecord(t *testing.T) {
	t.Parallel()
	client, stream := testenv.NewStream(t, 1)
	putPlain(t, client, stream, "k", "ends with newline\n", "does not", "")
	if got, want := mustRun(t, "tail", stream).stdout, "ends with newline\ndoes not\n\n"; got != want {
		t.Errorf("tail printed %q, want %q", got, want)
	}
	recs := decodeLines(t, mustRun(t, "tail", stream, "--json").stdout)
	if len(recs) != 3 || *recs[0].Data != "ends with newline\n" || *recs[2].Data != "" {
		t.Errorf("tail --json: %+v", recs)
	}
}

// throttlingKinesis answers GetShardIterator, and GetRecords with the
// given failures first, then one record, then an empty read at the tip.
func throttlingKinesis(t *testing.T, failures ...func(http.ResponseWriter)) (*kinesis.Client, *atomic.Int32) {
	t.Helper()
	var reads atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		switch op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "Kinesis_20131202."); op {
		case "GetShardIterator":
			fmt.Fprint(w, `{"ShardIterator":"it-0"}`)
		case "GetRecords":
			n := int(reads.Add(1)) - 1
			switch {
			case n < len(failures):
				failures[n](w)
			case n == len(failures):
				fmt.Fprint(w, `{"Records":[{"Data":"aGVsbG8=","PartitionKey":"k","SequenceNumber":"1"}],"NextShardIterator":"it-1","MillisBehindLatest":0}`)
			default:
				fmt.Fprint(w, `{"Records":[],"NextShardIterator":"it-2","MillisBehindLatest":0}`)
			}
		default:
			t.Errorf("unexpected call %s", op)
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	t.Cleanup(srv.Close)
	client := kinesis.New(kinesis.Options{
		BaseEndpoint: aws.String(srv.URL), Region: "us-east-1", Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	})
	return client, &reads
}

func awsErrorReply(status int, code string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("X-Amzn-Errortype", code)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"__type":%q,"message":"injected"}`, code)
	}
}

// A throttled read is made again after a backoff, whichever way the
// throttling comes; any other error ends the shard's reading at once.
func TestTailReadShardBacksOffWhenThrottled(t *testing.T) {
	t.Parallel()
	client, reads := throttlingKinesis(t,
		awsErrorReply(http.StatusBadRequest, "ProvisionedThroughputExceededException"),
		awsErrorReply(http.StatusBadRequest, "KMSThrottlingException"),
		func(w http.ResponseWriter) { w.WriteHeader(http.StatusTooManyRequests) }, // no body
	)
	var out strings.Builder
	tl := &tailer{client: client, stream: "s", pos: startPosition{kind: kintypes.ShardIteratorTypeTrimHorizon}, out: bufio.NewWriter(&out)}
	start := time.Now()
	o, err := tl.readShard(context.Background(), "shardId-000000000000", tl.pos, false)
	if err != nil {
		t.Fatalf("readShard: %v", err)
	}
	if o.ended || out.String() != "hello\n" || reads.Load() != 5 {
		t.Errorf("outcome %+v, printed %q after %d reads; want the record, at the tip after 5 reads", o, out.String(), reads.Load())
	}
	// Each backoff waits at least tailMinInterval, as does the read after
	// the record.
	if d := time.Since(start); d < 4*tailMinInterval {
		t.Errorf("3 throttled reads and a record read in %v: no backoff", d)
	}

	client, reads = throttlingKinesis(t, awsErrorReply(http.StatusBadRequest, "AccessDeniedException"))
	tl.client = client
	if _, err := tl.readShard(context.Background(), "shardId-000000000000", tl.pos, false); err == nil || reads.Load() != 1 {
		t.Errorf("AccessDenied: readShard = %v after %d reads, want the error at once", err, reads.Load())
	}
}
