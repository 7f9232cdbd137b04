package kpl_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/kpl"
)

// TestIntegrationNetworkErrorsRetried: with a client that does not retry
// (like the producer's default client), requests that time out or whose
// connection is cut are retried by the producer, and nothing fails.
func TestIntegrationNetworkErrorsRetried(t *testing.T) {
	px := proxy.StartForTest(t, proxy.Config{Seed: 3, Kinesis: proxy.KinesisFaults{
		CloseConnection: 0.2, Jitter: 600 * time.Millisecond, Operations: []string{"PutRecords"},
	}})
	direct := testenv.KinesisClient(t)
	stream := testenv.CreateStream(t, direct, 1)
	client := kinesis.NewFromConfig(testenv.AWSConfig(t, px.URL()), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(px.URL())
		o.Retryer = aws.NopRetryer{}
	})
	p := newProducer(t, client, stream, kpl.Config{
		AggregationMaxSize: 1000, CollectionMaxCount: 5, RecordMaxBufferedTime: 10 * time.Millisecond,
		RequestTimeout: 300 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 300
	keyOf := func(i int) string { return fmt.Sprintf("user-%d", i%30) }
	putAll(t, ctx, p, n, keyOf)
	if px.Stats().Faults == 0 {
		t.Fatal("no faults were injected")
	}
}

// TestIntegrationWholeRequestFaults puts records through a proxy answering
// some requests with 500 and 503 and cutting some connections after the
// request took effect: every record is written (at least once: a cut
// connection hides a success, so the retry writes a duplicate).
func TestIntegrationWholeRequestFaults(t *testing.T) {
	px := proxy.StartForTest(t, proxy.Config{Seed: 11, Kinesis: proxy.KinesisFaults{
		ServerError: 0.1, Unavailable: 0.1, CloseConnection: 0.05, Operations: []string{"PutRecords"},
	}})
	direct := testenv.KinesisClient(t)
	stream := testenv.CreateStream(t, direct, 2)
	p := newProducer(t, testenv.KinesisClientAt(t, px.URL()), stream, kpl.Config{
		AggregationMaxSize: 1000, CollectionMaxCount: 10, RecordMaxBufferedTime: 10 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 3000
	keyOf := func(i int) string { return fmt.Sprintf("user-%d", i%300) }
	putAll(t, ctx, p, n, keyOf)
	if px.Stats().Faults == 0 {
		t.Fatal("no faults were injected")
	}
	users, _ := readAll(t, ctx, direct, stream)
	count := map[string]int{}
	for _, u := range users {
		count[recordID(u.Data)]++
	}
	dups := 0
	for i := 0; i < n; i++ {
		switch c := count[fmt.Sprintf("rec-%08d", i)]; {
		case c == 0:
			t.Fatalf("rec-%08d lost", i)
		case c > 1:
			dups++
		}
	}
	t.Logf("%d user records read for %d put (%d duplicated by cut connections); proxy: %+v", len(users), n, dups, px.Stats())
}

// TestIntegrationPreserveOrderWithInternalFailures puts records of 50 keys
// with PreserveOrder through a proxy failing 5 % of entries, and checks that
// each key's records were written in the order they were put.
func TestIntegrationPreserveOrderWithInternalFailures(t *testing.T) {
	px := proxy.StartForTest(t, proxy.Config{Seed: 7, Kinesis: proxy.KinesisFaults{InternalFailure: 0.05}})
	direct := testenv.KinesisClient(t)
	stream := testenv.CreateStream(t, direct, 2)
	p := newProducer(t, testenv.KinesisClientAt(t, px.URL()), stream, kpl.Config{
		PreserveOrder: true, AggregationMaxSize: 2000, RecordMaxBufferedTime: 20 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const n = 4000
	keyOf := func(i int) string { return fmt.Sprintf("key-%02d", i%50) }
	putAll(t, ctx, p, n, keyOf)
	if px.Stats().Faults == 0 {
		t.Fatal("no faults were injected")
	}

	users, shards := readAll(t, ctx, direct, stream)
	checkExactlyOnce(t, users, n, keyOf, shards, true)
	// users are in shard order already (sequence number, sub-sequence).
	last := map[string]string{}
	for _, u := range users {
		id := recordID(u.Data)
		if prev, ok := last[u.PartitionKey]; ok && prev > id {
			t.Fatalf("key %s: %s written after %s", u.PartitionKey, id, prev)
		}
		last[u.PartitionKey] = id
	}
	t.Logf("proxy: %+v", px.Stats())
}
