package lease_test

import (
	"context"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/lease"
)

// queryCounter counts the Query calls to the owner index that succeeded
// and that failed.
type queryCounter struct {
	lease.DynamoDBAPI
	ok, failed atomic.Int64
}

func (q *queryCounter) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := q.DynamoDBAPI.Query(ctx, in, optFns...)
	if err != nil {
		q.failed.Add(1)
	} else {
		q.ok.Add(1)
	}
	return out, err
}

// TestJavaKCL2TableUpgradedInPlace: a lease table as the Java KCL 2.x
// leaves it (no index on leaseOwner, no coordinator state or worker
// metrics tables, leases owned by Java workers that stopped, attributes
// this package does not know) is taken over by two workers through the
// proxy, which builds the index in place as DynamoDB does (CREATING for a
// while, queries on it refused meanwhile). The workers work while it is
// built (they find their leases by a filtered scan), use it once it is
// ACTIVE, and keep the unknown attributes.
func TestJavaKCL2TableUpgradedInPlace(t *testing.T) {
	testenv.Require(t)
	ctx := context.Background()
	client, table := testenv.NewLeaseTable(t)
	for i := range 4 {
		item := map[string]types.AttributeValue{
			"leaseKey":                    &types.AttributeValueMemberS{Value: fmt.Sprintf("shardId-%012d", i)},
			"leaseOwner":                  &types.AttributeValueMemberS{Value: "java-host-1:4f0e2c"},
			"leaseCounter":                &types.AttributeValueMemberN{Value: "77"},
			"checkpoint":                  &types.AttributeValueMemberS{Value: "TRIM_HORIZON"},
			"checkpointSubSequenceNumber": &types.AttributeValueMemberN{Value: "0"},
			"leaseMigrationNote":          &types.AttributeValueMemberS{Value: "kcl-java-2.6"},
		}
		if _, err := client.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
	const build = 6 * time.Second
	p := proxy.StartForTest(t, proxy.Config{ModelIndexes: true, IndexBuildTime: build})
	pc := dynamodb.NewFromConfig(testenv.AWSConfig(t, p.URL()), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.Retryer = aws.NopRetryer{}
	})
	queries := &queryCounter{DynamoDBAPI: pc}
	started := time.Now()
	var cs []*lease.Coordinator
	for _, id := range []string{"go-a", "go-b"} {
		s, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: queries, Table: table})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.EnsureTable(ctx); err != nil {
			t.Fatal(err)
		}
		c, err := lease.NewCoordinator(lease.Config{Store: s, WorkerID: id, FailoverTime: itFailover})
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Run(rctx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	indexStatus := func() string {
		out, err := pc.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range out.Table.GlobalSecondaryIndexes {
			if aws.ToString(g.IndexName) == lease.OwnerIndex {
				return string(g.IndexStatus)
			}
		}
		return "missing"
	}
	if st := indexStatus(); st != "CREATING" {
		t.Fatalf("index %s after EnsureTable, want CREATING", st)
	}
	for _, suffix := range []string{lease.CoordinatorStateSuffix, lease.WorkerMetricsSuffix} {
		if _, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table + suffix)}); err != nil {
			t.Fatalf("table %s%s: %v", table, suffix, err)
		}
	}
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: client, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"go-a": 2, "go-b": 2}
	took := wait.For(t, build-500*time.Millisecond, "the Java workers' leases taken and balanced while the index is built", func() bool {
		return reflect.DeepEqual(owners(t, store), want) && len(cs[0].Held()) == 2 && len(cs[1].Held()) == 2
	})
	if st := indexStatus(); st != "CREATING" {
		t.Fatalf("index %s when the leases were balanced (%v after the start), want still CREATING", st, took)
	}
	if queries.failed.Load() == 0 {
		t.Fatal("no query on the index was refused while it was built")
	}
	t.Logf("Java leases taken and balanced %v after the start, the index still CREATING; %d queries refused meanwhile", took, queries.failed.Load())

	wait.For(t, build+5*time.Second-time.Since(started), "the index ACTIVE", func() bool { return indexStatus() == "ACTIVE" })
	// A graceful shutdown hands go-a's leases to go-b, which finds them
	// through the index now.
	if err := cs[0].ReleaseAll(ctx); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "go-b holding all 4", func() bool { return len(cs[1].Held()) == 4 })
	if queries.ok.Load() == 0 {
		t.Fatal("no query on the index once it was ACTIVE")
	}
	ls, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if v, ok := l.Extra["leaseMigrationNote"].(*types.AttributeValueMemberS); !ok || v.Value != "kcl-java-2.6" {
			t.Errorf("%s lost the Java attribute: %+v", l.Key, l.Extra)
		}
	}
}
