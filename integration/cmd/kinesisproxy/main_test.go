package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
)

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	if code := run(context.Background(), []string{"-h"}, io.Discard, &out); code != 0 {
		t.Fatalf("-h: exit %d", code)
	}
	for _, name := range []string{"listen", "kinesis", "dynamodb", "sink", "no-limits", "control-plane-limits", "seed", "write-bytes", "write-records",
		"read-bytes", "read-calls", "shard-map-ttl", "shard-lifecycle", "retention", "kinesis-internal-failure", "kinesis-500", "kinesis-503",
		"kinesis-limit-exceeded", "kinesis-close", "kinesis-latency", "kinesis-jitter", "kinesis-ops",
		"dynamodb-throughput", "dynamodb-throttling", "dynamodb-500", "dynamodb-503", "dynamodb-close",
		"dynamodb-latency", "dynamodb-jitter", "dynamodb-ops", "firehose-dir", "firehose-records", "firehose-bytes",
		"firehose-throttle", "firehose-record-failure", "sts-role", "sts-duration", "require-key",
		"fan-out", "fan-out-consumer-delay", "fan-out-lifetime", "fan-out-bytes", "fan-out-cut", "fan-out-internal-failure", "v"} {
		if !regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(name) + `(\s|$)`).MatchString(out.String()) {
			t.Errorf("-h does not document -%s", name)
		}
	}
}

func TestParseFlags(t *testing.T) {
	cfg, verbose, err := parseFlags([]string{"-kinesis", "http://127.0.0.1:1", "-sink", "-seed", "9",
		"-kinesis-internal-failure", "0.1", "-kinesis-ops", "PutRecords, GetRecords", "-dynamodb-latency", "50ms", "-v",
		"-shard-lifecycle", "-retention", "48h"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Sink || cfg.Seed != 9 || cfg.Kinesis.InternalFailure != 0.1 || !verbose || !cfg.ShardLifecycle || cfg.Retention != 48*time.Hour ||
		strings.Join(cfg.Kinesis.Operations, ",") != "PutRecords,GetRecords" || cfg.DynamoDB.Latency != 50*time.Millisecond {
		t.Errorf("parsed %+v", cfg)
	}
	cfg, _, err = parseFlags([]string{"-kinesis", "http://127.0.0.1:1", "-firehose-dir", t.TempDir(), "-firehose-records", "100",
		"-firehose-record-failure", "0.01", "-sts-role", "arn:aws:iam::1:role/a", "-sts-role", "arn:aws:iam::1:role/b=ext",
		"-sts-duration", "5m", "-require-key", "logs=AKIA1", "-require-key", "events=ASIA2"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Firehose == nil || cfg.Firehose.RecordsPerSecond != 100 || cfg.Firehose.Faults.RecordFailure != 0.01 ||
		cfg.STS == nil || cfg.STS.Duration != 5*time.Minute || len(cfg.STS.Roles) != 2 || cfg.STS.Roles["arn:aws:iam::1:role/b"].ExternalID != "ext" ||
		cfg.RequireAccessKey["logs"] != "AKIA1" || cfg.RequireAccessKey["events"] != "ASIA2" {
		t.Errorf("parsed Firehose %+v, STS %+v, keys %v", cfg.Firehose, cfg.STS, cfg.RequireAccessKey)
	}
	cfg, _, err = parseFlags([]string{"-kinesis", "http://127.0.0.1:1", "-fan-out", "-fan-out-consumer-delay", "-1s", "-fan-out-lifetime", "1m",
		"-fan-out-cut", "0.01"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FanOut == nil || cfg.FanOut.ConsumerDelay != -time.Second || cfg.FanOut.SubscriptionLifetime != time.Minute ||
		cfg.FanOut.BytesPerSecond != proxy.DefaultFanOutBytesPerSecond || cfg.FanOut.Faults.Cut != 0.01 {
		t.Errorf("parsed FanOut %+v", cfg.FanOut)
	}
	if cfg, _, err := parseFlags([]string{"-kinesis", "http://127.0.0.1:1"}, io.Discard); err != nil || cfg.FanOut != nil {
		t.Errorf("without -fan-out: FanOut %+v, %v; want nil", cfg.FanOut, err)
	}
	for _, args := range [][]string{
		{"-kinesis", "http://x", "-firehose-records", "5"}, // without -firehose-dir
		{"-kinesis", "http://x", "-fan-out-cut", "0.1"},    // without -fan-out
		{"-kinesis", "http://x", "-fan-out", "-fan-out-internal-failure", "2"},
		{"-kinesis", "http://x", "-sts-duration", "1m"}, // without -sts-role
		{"-kinesis", "http://x", "-require-key", "logs"},
		{}, // no upstream
		{"-kinesis", "http://x", "-kinesis-500", "2"}, // not a probability
		{"-kinesis", "http://x", "-dynamodb-ops", "PutRecords"},
		{"-kinesis", "http://x", "extra"},
		{"-kinesis", "http://x", "-bogus"},
		{"-kinesis", "http://x", "-retention", "-1h"},
	} {
		var stderr bytes.Buffer
		if code := run(context.Background(), args, io.Discard, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%q: exit %d, stderr %q; want 2 and a message", args, code, stderr.String())
		}
	}
}

func TestRunServesAndPrintsStats(t *testing.T) {
	ep := testenv.Require(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, []string{"-kinesis", ep.Kinesis, "-dynamodb", ep.DynamoDB, "-sink", "-shard-lifecycle"}, pw, io.Discard)
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatal("no output")
	}
	url, ok := strings.CutPrefix(sc.Text(), "AWS_ENDPOINT_URL=")
	if !ok {
		t.Fatalf("first line %q", sc.Text())
	}
	resp, err := http.Get(url + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /stats: HTTP %d", resp.StatusCode)
	}
	resp, err = http.Post(url+"/expire-shard?stream=none&shard=shardId-000000000000", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST /expire-shard for an unknown stream: HTTP %d, want 404", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.NoSuchOperation")
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("unknown operation: HTTP %d", resp.StatusCode)
	}
	cancel()
	var rest strings.Builder
	for sc.Scan() {
		rest.WriteString(sc.Text())
	}
	var s proxy.Stats
	if err := json.Unmarshal([]byte(rest.String()), &s); err != nil {
		t.Fatalf("stats on exit %q: %v", rest.String(), err)
	}
	if s.Requests != 1 || s.BadRequests != 1 {
		t.Errorf("stats on exit: %+v, want the 1 bad request (GET /stats and POST /expire-shard are not counted)", s)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
}
