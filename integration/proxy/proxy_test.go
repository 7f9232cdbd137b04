package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/logging"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

// kinesisNoRetry is a client for the proxy that makes every call once, so
// that a test sees each rejection.
func kinesisNoRetry(t *testing.T, p *proxy.Proxy) *kinesis.Client {
	t.Helper()
	return kinesis.NewFromConfig(testenv.AWSConfig(t, p.URL()), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.Retryer = aws.NopRetryer{}
		o.Logger = logging.Nop{} // the closed-connection tests make the SDK warn
	})
}

func dynamoNoRetry(t *testing.T, p *proxy.Proxy) *dynamodb.Client {
	t.Helper()
	return dynamodb.NewFromConfig(testenv.AWSConfig(t, p.URL()), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.Retryer = aws.NopRetryer{}
		o.Logger = logging.Nop{} // the closed-connection tests make the SDK warn
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPutRecordThrottledIsTypedError(t *testing.T) {
	clock := testenv.NewClock(time.Unix(1e9, 0))
	p := proxy.StartForTest(t, proxy.Config{Now: clock.Now, Limits: proxy.Limits{WriteRecordsPerSecond: 2}})
	client := kinesisNoRetry(t, p)
	stream := testenv.CreateStream(t, client, 1)
	ctx := ctxT(t)
	put := func(i int) error {
		_, err := client.PutRecord(ctx, &kinesis.PutRecordInput{
			StreamName: aws.String(stream), PartitionKey: aws.String(fmt.Sprint(i)), Data: []byte("x"),
		})
		return err
	}
	// The bucket holds 2 records of credit and refills at 2/s.
	for i, wantThrottled := range []bool{false, false, true, true} {
		err := put(i)
		var pte *types.ProvisionedThroughputExceededException
		if got := errors.As(err, &pte); got != wantThrottled || (err != nil && !got) {
			t.Fatalf("PutRecord %d: %v; want throttled %v", i, err, wantThrottled)
		}
	}
	clock.Advance(500 * time.Millisecond)
	if err := put(4); err != nil {
		t.Fatalf("PutRecord 500ms later: %v", err)
	}
	if s := p.Stats(); s.Throttled != 2 || s.Records != 3 {
		t.Errorf("Stats %+v, want Throttled 2 and Records 3", s)
	}
}

func TestDynamoDBFaultsAreTypedErrors(t *testing.T) {
	p := proxy.StartForTest(t, proxy.Config{})
	client := dynamoNoRetry(t, p)
	ctx := ctxT(t)
	cases := []struct {
		faults proxy.DynamoDBFaults
		check  func(error) bool
	}{
		{proxy.DynamoDBFaults{ProvisionedThroughputExceeded: 1}, func(err error) bool {
			var e *ddbtypes.ProvisionedThroughputExceededException
			return errors.As(err, &e)
		}},
		{proxy.DynamoDBFaults{Throttling: 1}, func(err error) bool {
			var e *ddbtypes.ThrottlingException
			return errors.As(err, &e)
		}},
		{proxy.DynamoDBFaults{ServerError: 1}, func(err error) bool {
			var e *ddbtypes.InternalServerError
			return errors.As(err, &e)
		}},
	}
	for _, c := range cases {
		if err := p.SetDynamoDBFaults(c.faults); err != nil {
			t.Fatal(err)
		}
		_, err := client.ListTables(ctx, &dynamodb.ListTablesInput{})
		if !c.check(err) {
			t.Errorf("faults %+v: ListTables error %T %v, want the typed error", c.faults, err, err)
		}
	}
	if err := p.SetDynamoDBFaults(proxy.DynamoDBFaults{}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Errorf("ListTables without faults: %v", err)
	}
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

// TestCloseEndsRequestsInProgress closes a proxy while a request waits out a
// long added latency: Close returns promptly and the caller gets an error.
func TestCloseEndsRequestsInProgress(t *testing.T) {
	p, err := proxy.Start(proxy.Config{KinesisURL: "http://127.0.0.1:1", Kinesis: proxy.KinesisFaults{Latency: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	client := kinesisNoRetry(t, p)
	errc := make(chan error, 1)
	go func() {
		_, err := client.ListStreams(context.Background(), &kinesis.ListStreamsInput{})
		errc <- err
	}()
	wait.For(t, 10*time.Second, "the request to arrive", func() bool { return p.Stats().Requests > 0 })
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("the request in progress succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the request in progress did not end")
	}
}
