package lease_test

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/lease"
)

// Short timings for the tests; the defaults are FailoverTime 10s,
// RenewInterval FailoverTime/3, TakeInterval FailoverTime/6.
const (
	itFailover = 2 * time.Second
	itTake     = itFailover / 6
)

// waitFor polls cond every 20 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// worker is a coordinator running on its own DynamoDB client.
type worker struct {
	c    *lease.Coordinator
	stop context.CancelFunc
	done chan struct{}
}

func startWorker(t *testing.T, table, id string) *worker {
	t.Helper()
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{Client: testenv.DynamoDBClient(t), Table: table})
	if err != nil {
		t.Fatal(err)
	}
	c, err := lease.NewCoordinator(lease.Config{Store: store, WorkerID: id, FailoverTime: itFailover})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{c: c, stop: cancel, done: make(chan struct{})}
	go func() { defer close(w.done); _ = c.Run(ctx) }()
	t.Cleanup(w.crash)
	return w
}

// crash stops the coordinator without releasing its leases.
func (w *worker) crash() {
	w.stop()
	<-w.done
}

func newTable(t *testing.T, leases int) (*lease.DynamoDBStore, *dynamodb.Client, string) {
	t.Helper()
	client, table := testenv.NewLeaseTable(t)
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{Client: client, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	for i := range leases {
		if _, err := store.Create(context.Background(), lease.Lease{Key: fmt.Sprintf("shardId-%012d", i), Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
			t.Fatal(err)
		}
	}
	return store, client, table
}

// owners counts the leases per owner in the table ("" for unowned).
func owners(t *testing.T, s lease.Store) map[string]int {
	t.Helper()
	ls, err := s.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, l := range ls {
		m[l.Owner]++
	}
	return m
}

// TestCoordinatorsOnDynamoDB: three coordinators on a 12-lease table
// converge to 4/4/4; a crashed one's leases are owned again within
// FailoverTime plus one taker pass; a graceful release is picked up within
// 2 s.
func TestCoordinatorsOnDynamoDB(t *testing.T) {
	testenv.Require(t)
	store, _, table := newTable(t, 12)
	ws := map[string]*worker{}
	for _, id := range []string{"w1", "w2", "w3"} {
		ws[id] = startWorker(t, table, id)
	}
	want := map[string]int{"w1": 4, "w2": 4, "w3": 4}
	waitFor(t, 10*time.Second, "4/4/4", func() bool { return reflect.DeepEqual(owners(t, store), want) })
	waitFor(t, 2*time.Second, "coordinators agreeing with the table", func() bool {
		for _, w := range ws {
			if len(w.c.Held()) != 4 {
				return false
			}
		}
		return true
	})

	// Crash: w2 stops renewing.
	ws["w2"].crash()
	crashed := time.Now()
	took := waitFor(t, itFailover+itTake+5*time.Second, "w2's leases owned again", func() bool {
		o := owners(t, store)
		return o["w2"] == 0 && o[""] == 0
	})
	t.Logf("crashed worker's leases owned again after %v (FailoverTime %v, taker pass %v)", took, itFailover, itTake)
	if limit := itFailover + itTake + 500*time.Millisecond; time.Since(crashed) > limit {
		t.Errorf("re-owned after %v, want within FailoverTime + one taker pass + 0.5 s call latency = %v", took, limit)
	}
	waitFor(t, 5*time.Second, "6/6", func() bool { return reflect.DeepEqual(owners(t, store), map[string]int{"w1": 6, "w3": 6}) })

	// Graceful: w1 releases everything.
	if err := ws["w1"].c.ReleaseAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	took = waitFor(t, 5*time.Second, "w1's leases taken", func() bool { return reflect.DeepEqual(owners(t, store), map[string]int{"w3": 12}) })
	t.Logf("released leases taken after %v", took)
	if took > 2*time.Second {
		t.Errorf("released leases taken after %v, want within 2 s", took)
	}
	if n := len(ws["w1"].c.Held()); n != 0 {
		t.Fatalf("w1 still holds %d leases", n)
	}
}

// TestConcurrentCoordinatorsOneTable: many coordinators starting at once on
// a table end balanced, each lease held by exactly one; a malformed item in
// the table is skipped by all of them.
func TestConcurrentCoordinatorsOneTable(t *testing.T) {
	testenv.Require(t)
	store, client, table := newTable(t, 20)
	if _, err := client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"leaseKey":     &types.AttributeValueMemberS{Value: "shardId-broken"},
		"leaseCounter": &types.AttributeValueMemberS{Value: "not a number"},
	}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	held := map[string]string{}
	ws := make([]*worker, 0, 5)
	for i := range 5 {
		ws = append(ws, startWorker(t, table, fmt.Sprintf("w%d", i)))
	}
	waitFor(t, 15*time.Second, "4 each", func() bool {
		o := owners(t, store)
		return len(o) == 5 && o["w0"] == 4 && o["w1"] == 4 && o["w2"] == 4 && o["w3"] == 4 && o["w4"] == 4
	})
	waitFor(t, 5*time.Second, "coordinators agreeing with the table", func() bool {
		mu.Lock()
		defer mu.Unlock()
		clear(held)
		for i, w := range ws {
			for _, l := range w.c.Held() {
				if _, dup := held[l.Key]; dup {
					return false // the loser has not noticed yet
				}
				held[l.Key] = fmt.Sprintf("w%d", i)
			}
		}
		return len(held) == 20
	})
}

// TestGracefulReleaseWithDefaults: with the default timings (FailoverTime
// 10 s, taker pass every 1.67 s) leases released by a worker that shuts
// down are owned by another within 2 s.
func TestGracefulReleaseWithDefaults(t *testing.T) {
	testenv.Require(t)
	store, client, table := newTable(t, 4)
	start := func(id string) (*lease.Coordinator, func()) {
		s, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{Client: client, Table: table})
		if err != nil {
			t.Fatal(err)
		}
		c, err := lease.NewCoordinator(lease.Config{Store: s, WorkerID: id})
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
	waitFor(t, 5*time.Second, "a holding all 4", func() bool { return owners(t, store)["a"] == 4 })
	start("b")
	waitFor(t, 10*time.Second, "2/2", func() bool { return reflect.DeepEqual(owners(t, store), map[string]int{"a": 2, "b": 2}) })
	if err := a.ReleaseAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopA()
	took := waitFor(t, 10*time.Second, "b holding all 4", func() bool { return owners(t, store)["b"] == 4 })
	t.Logf("released leases taken after %v", took)
	if took > 2*time.Second {
		t.Errorf("released leases taken after %v, want within 2 s", took)
	}
}
