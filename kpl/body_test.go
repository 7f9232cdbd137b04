package kpl

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// TestBodyMatchesSDK checks that the body the producer writes is the
// document the SDK's own serializer writes for the same input (as JSON
// values), that bodySize is exact, and that the request carries the SDK's
// headers and signature.
func TestBodyMatchesSDK(t *testing.T) {
	in := &kinesis.PutRecordsInput{
		StreamName: aws.String("stream-1"),
		StreamARN:  aws.String("arn:aws:kinesis:us-east-1:123456789012:stream/stream-1"),
		Records: []types.PutRecordsRequestEntry{
			{Data: []byte("hello"), PartitionKey: aws.String("plain")},
			{Data: []byte{0, 1, 2, 0xff}, PartitionKey: aws.String("q\"uote\\back\x01ctl\ttab"), ExplicitHashKey: aws.String("1234567890")},
			{Data: []byte{}, PartitionKey: aws.String("ünï€😀")},
			{Data: make([]byte, 1000), PartitionKey: aws.String("big")},
		},
	}
	type seen struct {
		body   []byte
		target string
		ctype  string
		authz  string
	}
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{b, r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type"), r.Header.Get("Authorization")})
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"FailedRecordCount":0,"Records":[{"SequenceNumber":"1","ShardId":"shardId-000000000000"},{"SequenceNumber":"2","ShardId":"shardId-000000000000"},{"SequenceNumber":"3","ShardId":"shardId-000000000000"},{"SequenceNumber":"4","ShardId":"shardId-000000000000"}]}`)
	}))
	defer srv.Close()
	client := kinesis.New(kinesis.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", ""),
	})
	ctx := t.Context()
	if _, err := client.PutRecords(ctx, in); err != nil {
		t.Fatal(err)
	}
	body := appendBody(make([]byte, 0, bodySize(in, nil)), in, nil, new(bodyScratch))
	if len(body) != bodySize(in, nil) {
		t.Errorf("body is %d bytes, bodySize says %d", len(body), bodySize(in, nil))
	}
	out, err := client.PutRecords(ctx, in, withBody(body))
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Records) != 4 || aws.ToString(out.Records[3].SequenceNumber) != "4" {
		t.Errorf("response not deserialized by the SDK: %+v", out.Records)
	}
	if len(got) != 2 {
		t.Fatalf("server saw %d requests, want 2", len(got))
	}
	sdk, ours := got[0], got[1]
	var a, b any
	if err := json.Unmarshal(sdk.body, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ours.body, &b); err != nil {
		t.Fatalf("our body is not JSON: %v\n%s", err, ours.body)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("bodies differ:\nSDK:  %s\nours: %s", sdk.body, ours.body)
	}
	if sdk.target != ours.target || sdk.ctype != ours.ctype {
		t.Errorf("headers differ: SDK %q %q, ours %q %q", sdk.target, sdk.ctype, ours.target, ours.ctype)
	}
	if !strings.HasPrefix(ours.authz, "AWS4-HMAC-SHA256 ") || ours.authz == sdk.authz {
		t.Errorf("our request is not signed for its own body: Authorization %q (SDK's %q)", ours.authz, sdk.authz)
	}
	// The data round-trips.
	var doc struct{ Records []struct{ Data string } }
	if err := json.Unmarshal(ours.body, &doc); err != nil {
		t.Fatal(err)
	}
	for i, r := range doc.Records {
		d, err := base64.StdEncoding.DecodeString(r.Data)
		if err != nil || string(d) != string(in.Records[i].Data) {
			t.Errorf("record %d: data %q (%v), want %q", i, d, err, in.Records[i].Data)
		}
	}
}

// TestBodyWithContainers checks a body mixing containers and plain
// entries, more containers than are digested at once: each container's
// data is what Encode returns, each plain entry's its own, bodySize is
// exact, and a second body written with the same scratch is right too.
func TestBodyWithContainers(t *testing.T) {
	in := &kinesis.PutRecordsInput{StreamName: aws.String("s")}
	var containers []*aggregation.Encoder
	for i := range 21 {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("k", i))})
		if i%4 == 3 {
			in.Records[i].Data = []byte(fmt.Sprint("plain ", i))
			containers = append(containers, nil)
			continue
		}
		e := new(aggregation.Encoder)
		for j := range 1 + i*7 {
			e.Add(aggregation.Record{PartitionKey: fmt.Sprint("key-", j%5), Data: bytes.Repeat([]byte{byte(i)}, 100+j)})
		}
		containers = append(containers, e)
	}
	sc := new(bodyScratch)
	for range 2 {
		body := appendBody(nil, in, containers, sc)
		if len(body) != bodySize(in, containers) {
			t.Errorf("body is %d bytes, bodySize says %d", len(body), bodySize(in, containers))
		}
		var doc struct {
			Records []struct{ Data, PartitionKey string }
		}
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Records) != len(in.Records) {
			t.Fatalf("%d records in the body, want %d", len(doc.Records), len(in.Records))
		}
		for i, r := range doc.Records {
			want := in.Records[i].Data
			if containers[i] != nil {
				want = containers[i].Encode()
			}
			if d, err := base64.StdEncoding.DecodeString(r.Data); err != nil || !bytes.Equal(d, want) || r.PartitionKey != fmt.Sprint("k", i) {
				t.Errorf("record %d: %d bytes of data (%v), key %q; want %d bytes, key k%d", i, len(d), err, r.PartitionKey, len(want), i)
			}
		}
	}
}
