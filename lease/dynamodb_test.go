package lease_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/lease"
	"github.com/kinesisgo/kinesis/lease/leasetest"
)

// newDynamoDBStore returns a store on a new table of the test endpoint,
// created by EnsureTable.
func newDynamoDBStore(t *testing.T, client lease.DynamoDBAPI, reg prometheus.Registerer) (*lease.DynamoDBStore, string) {
	t.Helper()
	_, table := testenv.NewTableName(t)
	if client == nil {
		client = testenv.DynamoDBClient(t)
	}
	s, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: client, Table: table, Metrics: reg})
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
	leasetest.TestStore(t, func(t *testing.T) lease.Store {
		s, _ := newDynamoDBStore(t, nil, nil)
		lease.SetScanLimit(s, 7) // List reads several pages
		return s
	})
}

// counterValue returns the value of the counter name registered in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no counter %s registered", name)
	return 0
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
	if _, err := s.Create(ctx, lease.Lease{Key: "good", Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
		t.Fatal(err)
	}
	ls, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ls) != 1 || ls[0].Key != "good" {
		t.Fatalf("List returned %+v, want only the well-formed lease", ls)
	}
	if n := counterValue(t, reg, "kinesis_lease_malformed_items_total"); n != 3 {
		t.Fatalf("malformed items counted: %v, want 3", n)
	}
	if _, err := s.Get(ctx, "string-counter"); !errors.Is(err, lease.ErrMalformed) {
		t.Fatalf("Get of a malformed item: %v, want ErrMalformed", err)
	}

	// The skipped items, for an operator; each logged as an error once,
	// however often the table is scanned.
	core, logs := observer.New(zap.InfoLevel)
	s2, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: client, Table: table, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ls, malformed, err := s2.ListWithMalformed(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, m := range malformed {
			if !errors.Is(m.Err, lease.ErrMalformed) {
				t.Errorf("%s: %v, want ErrMalformed", m.Key, m.Err)
			}
			keys = append(keys, m.Key)
		}
		if want := []string{"bad-parents", "no-counter", "string-counter"}; len(ls) != 1 || !slices.Equal(keys, want) {
			t.Fatalf("ListWithMalformed: %d leases, malformed %v; want 1 and %v", len(ls), keys, want)
		}
	}
	if n := logs.FilterLevelExact(zap.ErrorLevel).Len(); n != 3 {
		t.Errorf("%d error log lines after three scans, want 3: one per malformed item", n)
	}
}

func TestDynamoDBConfigValidate(t *testing.T) {
	for _, cfg := range []lease.DynamoDBConfig{
		{Table: "t"},
		{DynamoDB: &dynamodb.Client{}},
		{DynamoDB: &dynamodb.Client{}, Table: "t", ReadCapacity: 5},
		{DynamoDB: &dynamodb.Client{}, Table: "t", ReadCapacity: -1, WriteCapacity: 1},
	} {
		if err := cfg.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", cfg)
		}
	}
}

// TestDynamoDBStoreConformanceThrottled runs the conformance suite through
// the fault proxy with DynamoDB throttling on the reads: the client's SDK
// retries absorb it there, and the contract holds. (The store's conditional
// writes are single attempts whatever the client, so their throttling
// reaches the coordinator, which retries: see TestCoordinatorsThroughFaults.)
func TestDynamoDBStoreConformanceThrottled(t *testing.T) {
	testenv.Require(t)
	p := proxy.StartForTest(t, proxy.Config{DynamoDB: proxy.DynamoDBFaults{
		Throttling: 0.2, ProvisionedThroughputExceeded: 0.1,
		Operations: []string{"Scan", "GetItem", "DescribeTable"},
	}})
	client := dynamodb.NewFromConfig(testenv.AWSConfig(t, p.URL()), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = 12
			so.MaxBackoff = 100 * time.Millisecond
			so.RateLimiter = ratelimit.None
		})
	})
	t.Cleanup(func() { // after the suite's parallel subtests
		if st := p.Stats(); st.Faults == 0 {
			t.Errorf("the proxy injected no fault (stats %+v): the test proved nothing", st)
		} else {
			t.Logf("proxy: %d requests, %d throttled by injected faults", st.Requests, st.Faults)
		}
	})
	leasetest.TestStore(t, func(t *testing.T) lease.Store {
		s, _ := newDynamoDBStore(t, client, nil)
		return s
	})
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
	s, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: client, Table: provisioned, ReadCapacity: 7, WriteCapacity: 3})
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
	s, _ = lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: client, Table: other})
	if err := s.EnsureTable(ctx); err == nil {
		t.Fatal("EnsureTable accepted a table keyed on another attribute")
	}
}

// TestJavaKCLItem: a lease item as the Java KCL 2.x writes it, with an
// attribute this package does not know, is taken, renewed and checkpointed;
// every other attribute is left as it was.
func TestJavaKCLItem(t *testing.T) {
	testenv.Require(t)
	ctx := context.Background()
	_, client, table := newTable(t, 0)
	item := map[string]types.AttributeValue{
		"leaseKey":                     &types.AttributeValueMemberS{Value: "shardId-000000000007"},
		"leaseOwner":                   &types.AttributeValueMemberS{Value: "java-host-1:4f0e2c"},
		"leaseCounter":                 &types.AttributeValueMemberN{Value: "1234"},
		"checkpoint":                   &types.AttributeValueMemberS{Value: "49590338271490256608559692538361571095921575989136588801"},
		"checkpointSubSequenceNumber":  &types.AttributeValueMemberN{Value: "0"},
		"ownerSwitchesSinceCheckpoint": &types.AttributeValueMemberN{Value: "3"},
		"parentShardId":                &types.AttributeValueMemberSS{Value: []string{"shardId-000000000001", "shardId-000000000002"}},
		"startingHashKey":              &types.AttributeValueMemberS{Value: "170141183460469231731687303715884105728"},
		"endingHashKey":                &types.AttributeValueMemberS{Value: "340282366920938463463374607431768211455"},
		"throughputKBps":               &types.AttributeValueMemberN{Value: "17.25"},
		"leaseMigrationNote":           &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"from": &types.AttributeValueMemberS{Value: "kcl-java-2.6"}}},
	}
	if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, table, "go-worker")
	var held lease.Lease
	wait.For(t, itFailover+5*time.Second, "the Java worker's expired lease taken", func() bool {
		var ok bool
		held, ok = w.c.Lease("shardId-000000000007")
		return ok
	})
	if held.OwnerSwitchesSinceCheckpoint != 4 || held.Checkpoint != "49590338271490256608559692538361571095921575989136588801" {
		t.Fatalf("taken lease read as %+v", held)
	}
	wait.For(t, 5*time.Second, "a renewal", func() bool {
		l, _ := w.c.Lease(held.Key)
		return l.Counter > held.Counter
	})
	const next = "49590338271490256608559692538361571095921575989136599999"
	if _, err := w.c.Update(ctx, held.Key, func(l *lease.Lease) error {
		l.Checkpoint, l.CheckpointSubSequence, l.OwnerSwitchesSinceCheckpoint = next, 5, 0
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table), Key: map[string]types.AttributeValue{"leaseKey": item["leaseKey"]}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	changed := map[string]bool{"leaseOwner": true, "leaseCounter": true, "checkpoint": true, "checkpointSubSequenceNumber": true, "ownerSwitchesSinceCheckpoint": true}
	for _, k := range slices.Sorted(maps.Keys(item)) {
		if changed[k] {
			continue
		}
		if !reflect.DeepEqual(out.Item[k], item[k]) {
			t.Errorf("attribute %s: %#v, was %#v", k, out.Item[k], item[k])
		}
	}
	if len(out.Item) != len(item) {
		t.Errorf("item has %d attributes, had %d: %v", len(out.Item), len(item), slices.Sorted(maps.Keys(out.Item)))
	}
	str := func(k string) string { return out.Item[k].(*types.AttributeValueMemberS).Value }
	num := func(k string) string { return out.Item[k].(*types.AttributeValueMemberN).Value }
	if str("leaseOwner") != "go-worker" || str("checkpoint") != next || num("checkpointSubSequenceNumber") != "5" || num("ownerSwitchesSinceCheckpoint") != "0" {
		t.Errorf("written attributes: %v", out.Item)
	}
	if c := num("leaseCounter"); c <= "1235" && len(c) == 4 {
		t.Errorf("leaseCounter %s did not move past take and renewal", c)
	}
}

// retryRecorder is a DynamoDB client that records, per call, the retryer
// the store's options leave on a client configured with the SDK's standard
// retries.
type retryRecorder struct {
	lease.DynamoDBAPI // calls not overridden panic: the test makes none
	retryers          map[string]aws.Retryer
}

func (r *retryRecorder) record(op string, optFns []func(*dynamodb.Options)) {
	o := dynamodb.Options{Retryer: retry.NewStandard()}
	for _, f := range optFns {
		f(&o)
	}
	r.retryers[op] = o.Retryer
}

func (r *retryRecorder) PutItem(_ context.Context, _ *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	r.record("PutItem", optFns)
	return &dynamodb.PutItemOutput{}, nil
}

func (r *retryRecorder) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.record("UpdateItem", optFns)
	return &dynamodb.UpdateItemOutput{Attributes: map[string]types.AttributeValue{
		"leaseKey":     in.Key["leaseKey"],
		"leaseCounter": &types.AttributeValueMemberN{Value: "2"},
	}}, nil
}

func (r *retryRecorder) DeleteItem(_ context.Context, _ *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	r.record("DeleteItem", optFns)
	return &dynamodb.DeleteItemOutput{}, nil
}

// TestDynamoDBConditionalWritesAreSingleAttempts: a conditional write the
// SDK retried after it took effect would fail its own condition and read as
// another writer's; the store's writes are single attempts even on a client
// with the SDK's retries on.
func TestDynamoDBConditionalWritesAreSingleAttempts(t *testing.T) {
	r := &retryRecorder{retryers: map[string]aws.Retryer{}}
	s, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: r, Table: "t"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	l := lease.Lease{Key: "shardId-000000000000", Counter: 1}
	if _, err := s.Create(ctx, l); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Renew(ctx, l); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, l); err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"PutItem", "UpdateItem", "DeleteItem"} {
		got := r.retryers[op]
		if got == nil {
			t.Errorf("%s: not called", op)
		} else if n := got.MaxAttempts(); n != 1 {
			t.Errorf("%s: retryer %T makes up to %d attempts, want 1", op, got, n)
		}
	}
}
