package proxy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeKinesis is a stand-in upstream for tests of the proxy's own request
// handling: two shards, and every write succeeds.
func fakeKinesis(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), kinesisTargetPrefix)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		switch op {
		case "ListShards":
			fmt.Fprint(w, `{"Shards":[
				{"ShardId":"shardId-000000000001","HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"170141183460469231731687303715884105727"},"SequenceNumberRange":{"StartingSequenceNumber":"1"}},
				{"ShardId":"shardId-000000000002","HashKeyRange":{"StartingHashKey":"170141183460469231731687303715884105728","EndingHashKey":"340282366920938463463374607431768211455"},"SequenceNumberRange":{"StartingSequenceNumber":"1"}}]}`)
		case "PutRecords":
			var in struct{ Records []json.RawMessage }
			_ = json.Unmarshal(body, &in)
			res := make([]putResult, len(in.Records))
			for i := range res {
				res[i] = putResult{ShardId: "shardId-000000000001", SequenceNumber: fmt.Sprint(i + 1)}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"FailedRecordCount": 0, "Records": res})
		case "PutRecord":
			fmt.Fprint(w, `{"ShardId":"shardId-000000000001","SequenceNumber":"1"}`)
		case "GetShardIterator":
			fmt.Fprint(w, `{"ShardIterator":"it"}`)
		case "GetRecords":
			fmt.Fprint(w, `{"Records":[{"Data":"aGk="}],"NextShardIterator":"it2"}`)
		default:
			fmt.Fprint(w, `{}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func startFake(t testing.TB, cfg Config) *Proxy {
	cfg.KinesisURL = fakeKinesis(t).URL
	cfg.DynamoDBURL = cfg.KinesisURL
	p, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

const signed = "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0"

// serve runs one request through the proxy's handler directly, so that a
// panic would fail the test.
func serve(p *Proxy, method, target, contentType string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/", bytes.NewReader(body))
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Authorization", signed)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	return rec
}

func TestBadInput(t *testing.T) {
	p := startFake(t, Config{})
	const k, d = "application/x-amz-json-1.1", "application/x-amz-json-1.0"
	records := func(n int, rec string) string {
		return `{"StreamName":"s","Records":[` + strings.TrimSuffix(strings.Repeat(rec+",", n), ",") + `]}`
	}
	ok := `{"Data":"aGk=","PartitionKey":"k"}`
	mib := `{"Data":"` + strings.Repeat("A", (1<<20)/3*4) + `","PartitionKey":"k"}`
	cases := []struct {
		name, method, target, ctype, body string
		status                            int
		errType                           string
	}{
		{"malformed JSON", "POST", "Kinesis_20131202.PutRecords", k, `{`, 400, "SerializationException"},
		{"records not a list", "POST", "Kinesis_20131202.PutRecords", k, `{"StreamName":"s","Records":"x"}`, 400, "SerializationException"},
		{"data not base64", "POST", "Kinesis_20131202.PutRecords", k, records(1, `{"Data":"!!","PartitionKey":"k"}`), 400, "SerializationException"},
		{"no records", "POST", "Kinesis_20131202.PutRecords", k, records(0, ok), 400, "ValidationException"},
		{"501 records", "POST", "Kinesis_20131202.PutRecords", k, records(501, ok), 400, "ValidationException"},
		{"no stream", "POST", "Kinesis_20131202.PutRecords", k, `{"Records":[` + ok + `]}`, 400, "ValidationException"},
		{"no partition key", "POST", "Kinesis_20131202.PutRecords", k, records(1, `{"Data":"aGk="}`), 400, "ValidationException"},
		{"long partition key", "POST", "Kinesis_20131202.PutRecords", k, records(1, `{"Data":"aGk=","PartitionKey":"`+strings.Repeat("é", 257)+`"}`), 400, "ValidationException"},
		{"no data", "POST", "Kinesis_20131202.PutRecords", k, records(1, `{"PartitionKey":"k"}`), 400, "ValidationException"},
		{"bad hash key", "POST", "Kinesis_20131202.PutRecords", k, records(1, `{"Data":"aGk=","PartitionKey":"k","ExplicitHashKey":"-1"}`), 400, "InvalidArgumentException"},
		{"hash key 2^128", "POST", "Kinesis_20131202.PutRecord", k, `{"StreamName":"s","Data":"aGk=","PartitionKey":"k","ExplicitHashKey":"340282366920938463463374607431768211456"}`, 400, "InvalidArgumentException"},
		{"over 5 MiB", "POST", "Kinesis_20131202.PutRecords", k, records(6, mib), 400, "InvalidArgumentException"},
		{"PutRecord not an object", "POST", "Kinesis_20131202.PutRecord", k, `[]`, 400, "SerializationException"},
		{"GetRecords garbage", "POST", "Kinesis_20131202.GetRecords", k, `nope`, 400, "SerializationException"},
		{"unknown Kinesis operation", "POST", "Kinesis_20131202.Nope", k, `{}`, 400, "UnknownOperationException"},
		{"unknown DynamoDB operation", "POST", "DynamoDB_20120810.Nope", d, `{}`, 400, "com.amazon.coral.service#UnknownOperationException"},
		{"unknown service", "POST", "Foo_2020.Bar", k, `{}`, 400, "UnknownOperationException"},
		{"no target", "POST", "", k, `{}`, 400, "UnknownOperationException"},
		{"GET", "GET", "Kinesis_20131202.ListStreams", k, ``, 405, "UnknownOperationException"},
		{"huge body", "POST", "Kinesis_20131202.PutRecords", k, strings.Repeat(" ", MaxBodyBytes+1), 413, "RequestEntityTooLarge"},
	}
	for _, c := range cases {
		rec := serve(p, c.method, c.target, c.ctype, []byte(c.body))
		var body struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Errorf("%s: body %q is not JSON: %v", c.name, rec.Body.String(), err)
			continue
		}
		if rec.Code != c.status || body.Type != c.errType || body.Message == "" {
			t.Errorf("%s: HTTP %d %s %q, want HTTP %d %s with a message", c.name, rec.Code, body.Type, body.Message, c.status, c.errType)
		}
		if h := rec.Header().Get("X-Amzn-Errortype"); !strings.HasSuffix(c.errType, h) || h == "" {
			t.Errorf("%s: x-amzn-ErrorType %q", c.name, h)
		}
	}
	if got := p.Stats().BadRequests; got != int64(len(cases)) {
		t.Errorf("Stats().BadRequests = %d, want %d", got, len(cases))
	}
	// The proxy still works.
	if rec := serve(p, "POST", "Kinesis_20131202.PutRecords", k, []byte(records(3, ok))); rec.Code != 200 {
		t.Errorf("valid PutRecords after bad input: HTTP %d %s", rec.Code, rec.Body)
	}
}

func FuzzRequest(f *testing.F) {
	for _, target := range []string{"PutRecords", "PutRecord", "GetRecords", "GetShardIterator", "ListShards", "SplitShard"} {
		f.Add(target, []byte(`{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k"}],"Data":"aGk=","PartitionKey":"k","ShardIterator":"it","ShardId":"shardId-000000000001"}`))
	}
	f.Add("PutRecords", []byte(`{"StreamName":"s","Records":[{"Data":"aGk=","PartitionKey":"k","ExplicitHashKey":"99999999999999999999999999999999999999999"}]}`))
	f.Add("PutRecords", []byte(`{"StreamARN":"arn:aws:kinesis:us-east-1:0:stream/","Records":[null]}`))
	f.Add("PutRecord", []byte(`{"StreamName":"s","Data":null,"PartitionKey":""}`))
	f.Add("GetRecords", []byte(`{"ShardIterator":null}`))
	f.Add("Nope", []byte(`{`))
	p := startFake(f, Config{Kinesis: KinesisFaults{InternalFailure: 0.2}})
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		rec := serve(p, "POST", kinesisTargetPrefix+op, "application/x-amz-json-1.1", body)
		if rec.Code == 200 {
			return
		}
		var e struct {
			Type string `json:"__type"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Type == "" {
			t.Fatalf("HTTP %d with body %q: not an AWS error", rec.Code, rec.Body)
		}
	})
}

func TestControlPlaneLimits(t *testing.T) {
	c := newFakeClock()
	p := startFake(t, Config{ControlPlaneLimits: true, Now: c.now})
	call := func(op, body string) (int, string) {
		rec := serve(p, "POST", kinesisTargetPrefix+op, "application/x-amz-json-1.1", []byte(body))
		var e struct {
			Type string `json:"__type"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		return rec.Code, e.Type
	}
	burst := func(op, body string, n int) (passed int, lastErr string) {
		for range n {
			code, typ := call(op, body)
			if code == 200 {
				passed++
			} else {
				lastErr = typ
			}
		}
		return passed, lastErr
	}
	if n, e := burst("DescribeStream", `{"StreamName":"s"}`, 12); n != 10 || e != "LimitExceededException" {
		t.Errorf("DescribeStream: %d of 12 passed, last error %q; want 10 and LimitExceededException", n, e)
	}
	if n, _ := burst("DescribeStreamSummary", `{"StreamName":"s"}`, 25); n != 20 {
		t.Errorf("DescribeStreamSummary: %d of 25 passed, want 20", n)
	}
	if n, e := burst("GetShardIterator", `{"StreamName":"s","ShardId":"a","ShardIteratorType":"LATEST"}`, 7); n != 5 || e != "ProvisionedThroughputExceededException" {
		t.Errorf("GetShardIterator: %d of 7 passed, last error %q; want 5 and ProvisionedThroughputExceededException", n, e)
	}
	if n, _ := burst("GetShardIterator", `{"StreamName":"s","ShardId":"b","ShardIteratorType":"LATEST"}`, 5); n != 5 {
		t.Errorf("GetShardIterator on another shard: %d of 5 passed", n)
	}
	if n, _ := burst("ListStreams", `{}`, 5); n != 5 {
		t.Errorf("ListStreams: %d of 5 passed", n)
	}
	c.add(100 * time.Millisecond)
	if n, _ := burst("DescribeStream", `{"StreamName":"s"}`, 3); n != 1 {
		t.Errorf("DescribeStream 100ms later: %d of 3 passed, want 1", n)
	}
	if n, _ := burst("PutRecord", `{"StreamName":"s","Data":"aGk=","PartitionKey":"k"}`, 20); n != 20 {
		t.Errorf("PutRecord (not a control-plane call): %d of 20 passed", n)
	}
}

// TestShardMapRefreshedForUnknownHashKey lists the shards again when a
// record's hash key falls in no open shard of the cached map, as after a
// split done behind the proxy's back.
func TestShardMapRefreshedForUnknownHashKey(t *testing.T) {
	var lists atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".ListShards") {
			t.Errorf("unexpected call %s", r.Header.Get("X-Amz-Target"))
			return
		}
		low := `{"ShardId":"shardId-000000000001","HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"170141183460469231731687303715884105727"},"SequenceNumberRange":{"StartingSequenceNumber":"1"}}`
		high := `{"ShardId":"shardId-000000000002","HashKeyRange":{"StartingHashKey":"170141183460469231731687303715884105728","EndingHashKey":"340282366920938463463374607431768211455"},"SequenceNumberRange":{"StartingSequenceNumber":"1"}}`
		if lists.Add(1) == 1 {
			fmt.Fprint(w, `{"Shards":[`+low+`]}`) // the first listing knows only the low half
			return
		}
		fmt.Fprint(w, `{"Shards":[`+low+`,`+high+`]}`)
	}))
	defer upstream.Close()
	p, err := Start(Config{KinesisURL: upstream.URL, Sink: true, ShardMapTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	put := func(key string) (string, int) {
		rec := serve(p, "POST", kinesisTargetPrefix+"PutRecord", "application/x-amz-json-1.1",
			[]byte(`{"StreamName":"s","Data":"aGk=","PartitionKey":"k","ExplicitHashKey":"`+key+`"}`))
		var out struct{ ShardId string }
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
		return out.ShardId, rec.Code
	}
	if shard, code := put("1"); shard != "shardId-000000000001" || code != 200 {
		t.Fatalf("low key: shard %q, HTTP %d", shard, code)
	}
	if shard, code := put("340282366920938463463374607431768211455"); shard != "shardId-000000000002" || code != 200 {
		t.Fatalf("high key: shard %q, HTTP %d", shard, code)
	}
	if shard, _ := put("2"); shard != "shardId-000000000001" {
		t.Fatalf("low key again: shard %q", shard)
	}
	if n := lists.Load(); n != 2 {
		t.Errorf("ListShards called %d times, want 2 (once more for the unknown key only)", n)
	}
}
