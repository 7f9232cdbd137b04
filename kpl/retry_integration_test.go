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
