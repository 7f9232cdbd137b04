package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"
	"github.com/aws/aws-sdk-go-v2/service/firehose/types"
	"github.com/aws/smithy-go"

	"github.com/kinesisgo/kinesis/integration/proxy"
)

func firehoseClient(p *proxy.Proxy, akid string) *firehose.Client {
	return firehose.New(firehose.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(p.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(akid, "secret", ""),
		Retryer:      aws.NopRetryer{},
	})
}

// delivered reads what a delivery stream's folder holds, file by file in
// order.
func delivered(t *testing.T, dir string) []byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var all []byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestFirehosePutRecordBatch(t *testing.T) {
	dir := t.TempDir()
	p, err := proxy.Start(proxy.Config{KinesisURL: "http://127.0.0.1:1", Seed: 3, Firehose: &proxy.FirehoseConfig{
		Dir: dir, Faults: proxy.FirehoseFaults{RecordFailure: 0.2},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := firehoseClient(p, "test")
	ctx := context.Background()

	var recs []types.Record
	for i := range 100 {
		recs = append(recs, types.Record{Data: fmt.Appendf(nil, "line %03d\n", i)})
	}
	out, err := c.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("logs"), Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	failed := 0
	for i, r := range out.RequestResponses {
		if r.ErrorCode != nil {
			if *r.ErrorCode != "ServiceUnavailableException" {
				t.Errorf("record %d: ErrorCode %q", i, *r.ErrorCode)
			}
			failed++
			continue
		}
		if aws.ToString(r.RecordId) == "" {
			t.Errorf("record %d: no RecordId", i)
		}
		want = append(want, recs[i].Data...)
	}
	if failed == 0 || failed == 100 || int(aws.ToInt32(out.FailedPutCount)) != failed {
		t.Fatalf("%d of 100 failed, FailedPutCount %d: want some, reported", failed, aws.ToInt32(out.FailedPutCount))
	}
	if got := delivered(t, p.FirehoseDir("logs")); !bytes.Equal(got, want) {
		t.Fatalf("delivered %q\nwant %q", got, want)
	}
	if p.FirehoseDelivered("logs") != int64(100-failed) {
		t.Errorf("FirehoseDelivered = %d", p.FirehoseDelivered("logs"))
	}

	// Throttling: whole calls fail, nothing is delivered.
	if err := p.SetFirehoseFaults(proxy.FirehoseFaults{Throttle: 1}); err != nil {
		t.Fatal(err)
	}
	_, err = c.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String("logs"), Records: recs[:1]})
	var su *types.ServiceUnavailableException
	if !errors.As(err, &su) {
		t.Fatalf("throttled call: %v, want ServiceUnavailableException", err)
	}
	if p.FirehoseDelivered("logs") != int64(100-failed) {
		t.Error("a throttled call delivered records")
	}
	if err := p.SetFirehoseFaults(proxy.FirehoseFaults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRecord(ctx, &firehose.PutRecordInput{DeliveryStreamName: aws.String("other"), Record: &types.Record{Data: []byte("one\n")}}); err != nil {
		t.Fatal(err)
	}
	if got := delivered(t, p.FirehoseDir("other")); string(got) != "one\n" {
		t.Errorf("PutRecord delivered %q", got)
	}
}

func TestFirehoseLimits(t *testing.T) {
	p, err := proxy.Start(proxy.Config{KinesisURL: "http://127.0.0.1:1", Firehose: &proxy.FirehoseConfig{
		Dir: t.TempDir(), RecordsPerSecond: 10,
	}, RequireAccessKey: map[string]string{"locked": "ASIAROLE"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := firehoseClient(p, "test")
	ctx := context.Background()
	put := func(stream string, n, size int) error {
		recs := make([]types.Record, n)
		for i := range recs {
			recs[i] = types.Record{Data: bytes.Repeat([]byte("x"), size)}
		}
		_, err := c.PutRecordBatch(ctx, &firehose.PutRecordBatchInput{DeliveryStreamName: aws.String(stream), Records: recs})
		return err
	}
	code := func(err error) string {
		var ae smithy.APIError
		if errors.As(err, &ae) {
			return ae.ErrorCode()
		}
		return fmt.Sprint(err)
	}
	for _, tc := range []struct {
		stream  string
		n, size int
		want    string
	}{
		{"big", 501, 1, "ValidationException"},
		{"big", 1, 1000<<10 + 1, "ValidationException"},
		{"big", 5, 1000 << 10, "InvalidArgumentException"}, // 5,000 KiB > 4 MiB
		{"bad name!", 1, 1, "ValidationException"},
		{"locked", 1, 1, "AccessDeniedException"},
		{"rate", 10, 1, ""},
		{"rate", 10, 1, "ServiceUnavailableException"}, // over 10 records/s
	} {
		if got := code(put(tc.stream, tc.n, tc.size)); got != tc.want && !(tc.want == "" && got == "<nil>") {
			t.Errorf("%d records of %d B to %q: %s, want %q", tc.n, tc.size, tc.stream, got, tc.want)
		}
	}
}
