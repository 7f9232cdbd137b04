package proxy_test

import (
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
)

// apiError returns the error code and HTTP status of an SDK error.
func apiError(t *testing.T, err error) (string, int) {
	t.Helper()
	var ae smithy.APIError
	var re *awshttp.ResponseError
	if !errors.As(err, &ae) || !errors.As(err, &re) {
		t.Fatalf("error %T %v is not an API error with an HTTP response", err, err)
	}
	return ae.ErrorCode(), re.HTTPStatusCode()
}

func TestKinesisWholeRequestFaults(t *testing.T) {
	p := proxy.StartForTest(t, proxy.Config{})
	client := kinesisNoRetry(t, p)
	stream := testenv.CreateStream(t, client, 1)
	ctx := ctxT(t)
	listStreams := func() error {
		_, err := client.ListStreams(ctx, &kinesis.ListStreamsInput{})
		return err
	}
	putRecord := func() error {
		_, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("k"), Data: []byte("x")})
		return err
	}
	set := func(f proxy.KinesisFaults) {
		t.Helper()
		if err := p.SetKinesisFaults(f); err != nil {
			t.Fatal(err)
		}
	}

	set(proxy.KinesisFaults{ServerError: 1})
	if code, status := apiError(t, putRecord()); code != "InternalFailure" || status != 500 {
		t.Errorf("ServerError: %s HTTP %d", code, status)
	}
	set(proxy.KinesisFaults{Unavailable: 1})
	if code, status := apiError(t, listStreams()); code != "ServiceUnavailable" || status != 503 {
		t.Errorf("Unavailable: %s HTTP %d", code, status)
	}

	// LimitExceededException hits control-plane calls only.
	set(proxy.KinesisFaults{LimitExceeded: 1})
	var le *types.LimitExceededException
	if err := listStreams(); !errors.As(err, &le) {
		t.Errorf("LimitExceeded: ListStreams: %v", err)
	}
	if err := putRecord(); err != nil {
		t.Errorf("LimitExceeded: PutRecord (data plane): %v", err)
	}

	// Operations limits the faults to the named calls.
	set(proxy.KinesisFaults{ServerError: 1, Operations: []string{"PutRecord"}})
	if err := listStreams(); err != nil {
		t.Errorf("faults on PutRecord only: ListStreams: %v", err)
	}
	if err := putRecord(); err == nil {
		t.Error("faults on PutRecord only: PutRecord succeeded")
	}

	// Latency delays the call by at least the fixed part.
	set(proxy.KinesisFaults{Latency: 300 * time.Millisecond, Jitter: 50 * time.Millisecond})
	start := time.Now()
	if err := listStreams(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("call with 300ms latency took %v", d)
	}

	// A closed connection fails the call after it took effect.
	set(proxy.KinesisFaults{CloseConnection: 1, Operations: []string{"PutRecords"}})
	_, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream),
		Records: []types.PutRecordsRequestEntry{{PartitionKey: aws.String("k"), Data: []byte("cut")}}})
	var ae smithy.APIError
	if err == nil || errors.As(err, &ae) {
		t.Errorf("CloseConnection: PutRecords error %v, want a transport error", err)
	}
	set(proxy.KinesisFaults{})
	found := false
	for _, r := range readAll(t, stream, 4) {
		found = found || string(r.Data) == "cut"
	}
	if !found {
		t.Error("CloseConnection: the record was not written")
	}
	if got := p.Stats().Faults; got != 5 {
		t.Errorf("Stats().Faults = %d, want 5", got)
	}
}

func TestDynamoDBFaultsOnNamedOperations(t *testing.T) {
	p := proxy.StartForTest(t, proxy.Config{})
	client := dynamoNoRetry(t, p)
	_, table := testenv.NewLeaseTable(t)
	ctx := ctxT(t)
	key := map[string]ddbtypes.AttributeValue{"leaseKey": &ddbtypes.AttributeValueMemberS{Value: "shard-1"}}
	if err := p.SetDynamoDBFaults(proxy.DynamoDBFaults{Throttling: 1, Operations: []string{"UpdateItem"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: key}); err != nil {
		t.Fatalf("PutItem (no faults): %v", err)
	}
	_, err := client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key,
		UpdateExpression:          aws.String("SET leaseCounter = :one"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": &ddbtypes.AttributeValueMemberN{Value: "1"}}})
	var te *ddbtypes.ThrottlingException
	if !errors.As(err, &te) {
		t.Fatalf("UpdateItem: %v, want ThrottlingException", err)
	}

	// A closed connection: the write happened, the caller saw an error.
	if err := p.SetDynamoDBFaults(proxy.DynamoDBFaults{CloseConnection: 1, Operations: []string{"UpdateItem"}}); err != nil {
		t.Fatal(err)
	}
	_, err = client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(table), Key: key,
		UpdateExpression:          aws.String("SET leaseCounter = :one"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": &ddbtypes.AttributeValueMemberN{Value: "1"}}})
	if err == nil {
		t.Fatal("UpdateItem with CloseConnection succeeded")
	}
	got, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := got.Item["leaseCounter"].(*ddbtypes.AttributeValueMemberN); !ok || n.Value != "1" {
		t.Errorf("after the cut UpdateItem: item %v, want leaseCounter 1", got.Item)
	}
}

// TestSDKRetriesInjectedThrottling checks that the SDK's standard retryer
// treats the proxy's throttling as retryable: with half the calls
// throttled, every call eventually succeeds.
func TestSDKRetriesInjectedThrottling(t *testing.T) {
	p := proxy.StartForTest(t, proxy.Config{Seed: 3, DynamoDB: proxy.DynamoDBFaults{Throttling: 0.3, ServerError: 0.2}})
	client := dynamodb.NewFromConfig(testenv.AWSConfig(t, p.URL()), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 20
			so.MaxBackoff = 5 * time.Millisecond
		})
	})
	ctx := ctxT(t)
	for i := range 20 {
		if _, err := client.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if p.Stats().Faults == 0 {
		t.Error("no faults injected")
	}
}

func TestControlPlaneLimitsTypedErrors(t *testing.T) {
	_, stream := testenv.NewStream(t, 1) // created straight on the emulator
	clock := testenv.NewClock(time.Unix(1e9, 0))
	p := proxy.StartForTest(t, proxy.Config{ControlPlaneLimits: true, Now: clock.Now})
	client := kinesisNoRetry(t, p)
	ctx := ctxT(t)
	for i := range 21 {
		_, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		var le *types.LimitExceededException
		if (i < 20 && err != nil) || (i == 20 && !errors.As(err, &le)) {
			t.Fatalf("DescribeStreamSummary call %d: %v", i+1, err)
		}
	}
	for i := range 6 {
		_, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
		var pte *types.ProvisionedThroughputExceededException
		if (i < 5 && err != nil) || (i == 5 && !errors.As(err, &pte)) {
			t.Fatalf("GetShardIterator call %d: %v", i+1, err)
		}
	}
}
