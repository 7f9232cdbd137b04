package lease_test

import (
	"context"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/lease"
	"go.uber.org/zap/zaptest"
)

// TestCoordinatorsThroughFaults: two coordinators reach the table through
// the fault proxy, with DynamoDB throttling and with connections cut after
// writes took effect (so that the retry of a renewal, take or release fails
// its condition), on clients with the SDK's own retries turned off, as the
// kcl worker's are: the coordinators' retries alone carry them. They still
// balance 6/6, lose no lease to a spurious failure, and a graceful release
// still hands everything over.
func TestCoordinatorsThroughFaults(t *testing.T) {
	testenv.Require(t)
	store, _, table := newTable(t, 12)
	p := proxy.StartForTest(t, proxy.Config{DynamoDB: proxy.DynamoDBFaults{
		Throttling:      0.1,
		CloseConnection: 0.1,
		Operations:      []string{"UpdateItem", "Scan", "GetItem"},
	}})
	var (
		mu   sync.Mutex
		lost = map[string][]string{} // worker -> keys it was told it lost
	)
	lostBy := func(id string) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lost[id])
	}
	start := func(id string) (*lease.Coordinator, func()) {
		client := dynamodb.NewFromConfig(testenv.AWSConfig(t, p.URL()), func(o *dynamodb.Options) {
			o.BaseEndpoint = aws.String(p.URL())
			o.Retryer = aws.NopRetryer{}
		})
		s, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{Client: client, Table: table})
		if err != nil {
			t.Fatal(err)
		}
		c, err := lease.NewCoordinator(lease.Config{Store: s, WorkerID: id, FailoverTime: itFailover, Logger: zaptest.NewLogger(t).Named(id),
			OnLost: func(l lease.Lease) { mu.Lock(); lost[id] = append(lost[id], l.Key); mu.Unlock() }})
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
	stolen := map[string]bool{} // a lost these to b's steals (OnLost may report them later)
	for _, l := range b.Held() {
		stolen[l.Key] = true
	}
	// Steady state for a few failover times: every lease stays where it is.
	time.Sleep(3 * itFailover) // observing a period of time, not waiting for a condition
	if got := owners(t, store); !reflect.DeepEqual(got, map[string]int{"a": 6, "b": 6}) {
		t.Fatalf("steady state under faults moved leases: %v", got)
	}
	for _, k := range lostBy("a") {
		if !stolen[k] {
			t.Errorf("a reported %s lost, which b did not steal", k)
		}
	}
	if ks := lostBy("b"); len(ks) > 0 {
		t.Errorf("b reported %v lost under faults", ks)
	}
	if t.Failed() {
		t.FailNow()
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
