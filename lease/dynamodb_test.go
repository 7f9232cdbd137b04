package lease

import (
	"context"
	"errors"
	"github.com/kinesisgo/kinesis/checkpoint"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// newDynamoDBStore returns a store on a new table of the test endpoint,
// created by EnsureTable.
func newDynamoDBStore(t *testing.T, client DynamoDBAPI, reg prometheus.Registerer) (*DynamoDBStore, string) {
	t.Helper()
	_, table := testenv.NewTableName(t)
	if client == nil {
		client = testenv.DynamoDBClient(t)
	}
	s, err := NewDynamoDBStore(DynamoDBConfig{Client: client, Table: table, Metrics: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testenv.ReadyTimeout)
	defer cancel()
	if err := s.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureTable(ctx); err != nil { // exists already: no-op
		t.Fatalf("second EnsureTable: %v", err)
	}
	return s, table
}

func TestDynamoDBStoreConformance(t *testing.T) {
	testenv.Require(t)
	testStoreConformance(t, func(t *testing.T) Store {
		s, _ := newDynamoDBStore(t, nil, nil)
		s.scanLimit = 7 // List reads several pages
		return s
	})
}

func TestDynamoDBStoreSkipsMalformedItems(t *testing.T) {
	testenv.Require(t)
	client := testenv.DynamoDBClient(t)
	reg := prometheus.NewRegistry()
	s, table := newDynamoDBStore(t, client, reg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bad := []map[string]types.AttributeValue{
		{"leaseKey": &types.AttributeValueMemberS{Value: "no-counter"}},
		{"leaseKey": &types.AttributeValueMemberS{Value: "string-counter"}, "leaseCounter": &types.AttributeValueMemberS{Value: "1"}},
		{"leaseKey": &types.AttributeValueMemberS{Value: "bad-parents"}, "leaseCounter": &types.AttributeValueMemberN{Value: "1"},
			"parentShardId": &types.AttributeValueMemberS{Value: "shardId-0"}},
	}
	for _, item := range bad {
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Create(ctx, Lease{Key: "good", Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
		t.Fatal(err)
	}
	ls, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Key != "good" {
		t.Fatalf("List returned %+v, want only the well-formed lease", ls)
	}
	if n := testutil.ToFloat64(s.malformed); n != 3 {
		t.Fatalf("malformed items counted: %v, want 3", n)
	}
	if _, err := s.Get(ctx, "string-counter"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Get of a malformed item: %v, want ErrMalformed", err)
	}
}

func TestDynamoDBConfigValidate(t *testing.T) {
	for _, cfg := range []DynamoDBConfig{
		{Table: "t"},
		{Client: &dynamodb.Client{}},
		{Client: &dynamodb.Client{}, Table: "t", ReadCapacity: 5},
		{Client: &dynamodb.Client{}, Table: "t", ReadCapacity: -1, WriteCapacity: 1},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", cfg)
		}
	}
}

// TestDynamoDBStoreConformanceThrottled runs the conformance tests through
// the fault proxy with DynamoDB throttling on: the SDK's retries absorb it
// and the contract holds.
func TestDynamoDBStoreConformanceThrottled(t *testing.T) {
	testenv.Require(t)
	p := proxy.StartForTest(t, proxy.Config{DynamoDB: proxy.DynamoDBFaults{Throttling: 0.2, ProvisionedThroughputExceeded: 0.1}})
	client := dynamodb.NewFromConfig(testenv.AWSConfig(t, p.URL()), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 12
			so.MaxBackoff = 100 * time.Millisecond
			so.RateLimiter = ratelimit.None
		})
	})
	testStoreConformance(t, func(t *testing.T) Store {
		s, _ := newDynamoDBStore(t, client, nil)
		return s
	})
	if st := p.Stats(); st.Faults == 0 {
		t.Fatalf("the proxy injected no fault (stats %+v): the test proved nothing", st)
	} else {
		t.Logf("proxy: %d requests, %d throttled by injected faults", st.Requests, st.Faults)
	}
}

// TestEnsureTable: on-demand by default, provisioned when asked, waits
// until ACTIVE, and refuses a table with another key.
func TestEnsureTable(t *testing.T) {
	testenv.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), testenv.ReadyTimeout)
	defer cancel()
	client := testenv.DynamoDBClient(t)
	describe := func(table string) *types.TableDescription {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		return out.Table
	}

	_, onDemand := newDynamoDBStore(t, client, nil)
	d := describe(onDemand)
	if d.TableStatus != types.TableStatusActive || d.BillingModeSummary == nil || d.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Fatalf("default table: status %s, billing %+v", d.TableStatus, d.BillingModeSummary)
	}

	_, provisioned := testenv.NewTableName(t)
	s, err := NewDynamoDBStore(DynamoDBConfig{Client: client, Table: provisioned, ReadCapacity: 7, WriteCapacity: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureTable(ctx); err != nil {
		t.Fatal(err)
	}
	d = describe(provisioned)
	if d.TableStatus != types.TableStatusActive || aws.ToInt64(d.ProvisionedThroughput.ReadCapacityUnits) != 7 || aws.ToInt64(d.ProvisionedThroughput.WriteCapacityUnits) != 3 {
		t.Fatalf("provisioned table: status %s, throughput %+v", d.TableStatus, d.ProvisionedThroughput)
	}

	_, other := testenv.NewTableName(t)
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(other),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: types.KeyTypeHash}},
		BillingMode:          types.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	s, _ = NewDynamoDBStore(DynamoDBConfig{Client: client, Table: other})
	if err := s.EnsureTable(ctx); err == nil {
		t.Fatal("EnsureTable accepted a table keyed on another attribute")
	}
}
