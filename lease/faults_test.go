package lease_test

import (
	"context"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/lease"
	"go.uber.org/zap/zaptest"
)

// TestCoordinatorsThroughFaults: two coordinators reach the table through
// the fault proxy, with DynamoDB throttling and with connections cut after
// writes took effect (so that the SDK's retry of a renewal, take or release
// fails its condition). They still balance 6/6, lose no lease to a spurious
// failure, and a graceful release still hands everything over.
func TestCoordinatorsThroughFaults(t *testing.T) {
	testenv.Require(t)
	store, _, table := newTable(t, 12)
	p := proxy.StartForTest(t, proxy.Config{DynamoDB: proxy.DynamoDBFaults{
		Throttling:      0.1,
		CloseConnection: 0.1,
		Operations:      []string{"UpdateItem", "Scan", "GetItem"},
	}})
	var lost atomic.Int32
	start := func(id string) (*lease.Coordinator, func()) {
		// The SDK's default retry backoff (up to seconds) is longer than
		// this test's FailoverTime: cap it, as a user with a short
		// FailoverTime would.
		client := dynamodb.NewFromConfig(testenv.AWSConfig(t, p.URL()), func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(p.URL())
			o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxBackoff = 100 * time.Millisecond })
		})
		s, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{Client: client, Table: table})
		if err != nil {
			t.Fatal(err)
		}
		c, err := lease.NewCoordinator(lease.Config{Store: s, WorkerID: id, FailoverTime: itFailover, Logger: zaptest.NewLogger(t).Named(id), OnLost: func(lease.Lease) { lost.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = c.Run(ctx) }()
		stop := func() { cancel(); <-done }
		t.Cleanup(stop)
		return c, stop
	}
	a, stopA := start("a")
	waitFor(t, 10*time.Second, "a holding 12", func() bool { return owners(t, store)["a"] == 12 })
	b, _ := start("b")
	waitFor(t, 10*time.Second, "6/6", func() bool {
		return reflect.DeepEqual(owners(t, store), map[string]int{"a": 6, "b": 6}) && len(a.Held()) == 6 && len(b.Held()) == 6
	})
	lostAtBalance := lost.Load() // a lost 6 to b's steals
	// Steady state for a few failover times: every lease stays where it is.
	time.Sleep(3 * itFailover) // observing a period of time, not waiting for a condition
	if got := owners(t, store); !reflect.DeepEqual(got, map[string]int{"a": 6, "b": 6}) {
		t.Fatalf("steady state under faults moved leases: %v", got)
	}
	if n := lost.Load() - lostAtBalance; n != 0 {
		t.Fatalf("%d leases reported lost in steady state under faults", n)
	}
	if err := a.ReleaseAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopA()
	waitFor(t, 10*time.Second, "b holding 12", func() bool { return owners(t, store)["b"] == 12 && len(b.Held()) == 12 })
	st := p.Stats()
	if st.Faults == 0 {
		t.Fatalf("no fault injected: %+v", st)
	}
	t.Logf("proxy: %d requests, %d faults injected", st.Requests, st.Faults)
}
