package lease_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap/zaptest"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/lease"
)

// Short timings for the tests; the defaults are FailoverTime 10s,
// RenewInterval FailoverTime/3, TakeInterval FailoverTime/6.
const (
	itFailover = 2 * time.Second
	itTake     = itFailover / 6
)

// worker is a coordinator running on its own DynamoDB client.
type worker struct {
	c    *lease.Coordinator
	stop context.CancelFunc
	done chan struct{}
}

func startWorker(t *testing.T, table, id string) *worker {
	t.Helper()
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: testenv.DynamoDBClient(t), Table: table})
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
	store, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: client, Table: table})
	if err != nil {
		t.Fatal(err)
	}
	// A table as the Java KCL 2.x makes it, upgraded in place.
	if err := store.EnsureTable(context.Background()); err != nil {
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
	wait.For(t, 10*time.Second, "4/4/4", func() bool { return reflect.DeepEqual(owners(t, store), want) })
	wait.For(t, 2*time.Second, "coordinators agreeing with the table", func() bool {
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
	took := wait.For(t, itFailover+itTake+5*time.Second, "w2's leases owned again", func() bool {
		o := owners(t, store)
		return o["w2"] == 0 && o[""] == 0
	})
	t.Logf("crashed worker's leases owned again after %v (FailoverTime %v, taker pass %v)", took, itFailover, itTake)
	if limit := itFailover + itTake + 500*time.Millisecond; time.Since(crashed) > limit {
		t.Errorf("re-owned after %v, want within FailoverTime + one taker pass + 0.5 s call latency = %v", took, limit)
	}
	wait.For(t, 5*time.Second, "6/6", func() bool { return reflect.DeepEqual(owners(t, store), map[string]int{"w1": 6, "w3": 6}) })

	// Graceful: w1 releases everything.
	if err := ws["w1"].c.ReleaseAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	took = wait.For(t, 5*time.Second, "w1's leases taken", func() bool { return reflect.DeepEqual(owners(t, store), map[string]int{"w3": 12}) })
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
	wait.For(t, 15*time.Second, "4 each", func() bool {
		o := owners(t, store)
		return len(o) == 5 && o["w0"] == 4 && o["w1"] == 4 && o["w2"] == 4 && o["w3"] == 4 && o["w4"] == 4
	})
	wait.For(t, 5*time.Second, "coordinators agreeing with the table", func() bool {
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
		s, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: client, Table: table})
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
	wait.For(t, 5*time.Second, "a holding all 4", func() bool { return owners(t, store)["a"] == 4 })
	start("b")
	wait.For(t, 10*time.Second, "2/2", func() bool { return reflect.DeepEqual(owners(t, store), map[string]int{"a": 2, "b": 2}) })
	if err := a.ReleaseAll(context.Background()); err != nil {
		t.Fatal(err)
	}
	stopA()
	took := wait.For(t, 10*time.Second, "b holding all 4", func() bool { return owners(t, store)["b"] == 4 })
	t.Logf("released leases taken after %v", took)
	if took > 2*time.Second {
		t.Errorf("released leases taken after %v, want within 2 s", took)
	}
}

// TestDuplicateWorkerIDOnDynamoDB: a process started with the WorkerID of
// one still running (a restart whose predecessor has not stopped) takes
// the leases it finds under that ID; the predecessor drops them at its next
// renewal, since their counters moved without a write of its own, and its
// checkpoints fail with ErrLeaseLost; the successor keeps them and the
// predecessor does not take them back.
func TestDuplicateWorkerIDOnDynamoDB(t *testing.T) {
	testenv.Require(t)
	store, _, table := newTable(t, 4)
	old := startWorker(t, table, "w1")
	wait.For(t, 5*time.Second, "the first process holding all 4", func() bool { return len(old.c.Held()) == 4 })
	successor := startWorker(t, table, "w1")
	took := wait.For(t, 5*time.Second, "the successor holding all 4 and the predecessor none", func() bool {
		return len(successor.c.Held()) == 4 && len(old.c.Held()) == 0
	})
	t.Logf("the predecessor dropped the leases after %v (RenewInterval %v)", took, itFailover/3)
	for _, l := range successor.c.Held() {
		if _, err := old.c.Update(context.Background(), l.Key, func(l *lease.Lease) error { l.Checkpoint = "42"; return nil }); !errors.Is(err, lease.ErrLeaseLost) {
			t.Fatalf("the predecessor's checkpoint of %s: %v, want ErrLeaseLost", l.Key, err)
		}
	}
	if wait.Until(2*itFailover, func() bool { return len(successor.c.Held()) != 4 || len(old.c.Held()) != 0 }) {
		t.Fatalf("leases moved again: the successor holds %d, the predecessor %d", len(successor.c.Held()), len(old.c.Held()))
	}
	for _, l := range successor.c.Held() {
		if _, err := successor.c.Update(context.Background(), l.Key, func(l *lease.Lease) error { l.Checkpoint = "43"; return nil }); err != nil {
			t.Fatalf("the successor's checkpoint of %s: %v", l.Key, err)
		}
	}
	ls, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Owner != "w1" || l.Checkpoint != "43" {
			t.Fatalf("lease %s: owner %q checkpoint %q, want w1 and the successor's 43", l.Key, l.Owner, l.Checkpoint)
		}
	}
}

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
		s, err := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: client, Table: table})
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
	wait.For(t, 10*time.Second, "a holding 12", func() bool { return owners(t, store)["a"] == 12 })
	b, _ := start("b")
	defer func() {
		if t.Failed() {
			t.Logf("table %v; a holds %d, b %d", owners(t, store), len(a.Held()), len(b.Held()))
		}
	}()
	wait.For(t, 10*time.Second, "6/6", func() bool {
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
	wait.For(t, 10*time.Second, "b holding 12", func() bool { return owners(t, store)["b"] == 12 && len(b.Held()) == 12 })
	st := p.Stats()
	if st.Faults == 0 {
		t.Fatalf("no fault injected: %+v", st)
	}
	t.Logf("proxy: %d requests, %d faults injected", st.Requests, st.Faults)
}

// capacityClient counts the calls and the capacity units DynamoDB reports
// consuming (it asks for them on every call).
type capacityClient struct {
	*dynamodb.Client
	mu                   sync.Mutex
	scans, updates, gets int
	items                int
	rcu, wcu             float64
}

func (c *capacityClient) add(cc *types.ConsumedCapacity, read bool) {
	if cc == nil || cc.CapacityUnits == nil {
		return
	}
	if read {
		c.rcu += *cc.CapacityUnits
	} else {
		c.wcu += *cc.CapacityUnits
	}
}

func (c *capacityClient) Scan(ctx context.Context, in *dynamodb.ScanInput, o ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.Client.Scan(ctx, in, o...)
	if err == nil {
		c.mu.Lock()
		c.scans++
		c.items += len(out.Items)
		c.add(out.ConsumedCapacity, true)
		c.mu.Unlock()
	}
	return out, err
}

func (c *capacityClient) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.Client.GetItem(ctx, in, o...)
	if err == nil {
		c.mu.Lock()
		c.gets++
		c.add(out.ConsumedCapacity, true)
		c.mu.Unlock()
	}
	return out, err
}

func (c *capacityClient) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	in.ReturnConsumedCapacity = types.ReturnConsumedCapacityTotal
	out, err := c.Client.UpdateItem(ctx, in, o...)
	if err == nil {
		c.mu.Lock()
		c.updates++
		c.add(out.ConsumedCapacity, false)
		c.mu.Unlock()
	}
	return out, err
}

func (c *capacityClient) snapshot() (scans, updates, gets, items int, rcu, wcu float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.scans, c.updates, c.gets, c.items, c.rcu, c.wcu
}

// BenchmarkTableLoadDynamoDB measures, against the DynamoDB emulator, the
// calls and capacity units of two coordinators holding M leases at steady
// state. To keep it short the timings are scaled down (FailoverTime 3 s
// instead of 10 s, every interval in proportion) and the figures scaled
// back to the default timings: per lease per minute, capacity units
// consumed by renewals (WCU) and taker scans (RCU, consistent reads).
func BenchmarkTableLoadDynamoDB(b *testing.B) {
	testenv.Require(b)
	const failover = 3 * time.Second
	scale := float64(failover) / float64(10*time.Second)
	for _, m := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("leases=%d/workers=2", m), func(b *testing.B) {
			for range b.N {
				client, table := testenv.NewLeaseTable(b)
				seed, _ := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: client, Table: table})
				for i := range m {
					if _, err := seed.Create(context.Background(), lease.Lease{Key: fmt.Sprintf("shardId-%012d", i), Checkpoint: string(checkpoint.TrimHorizon),
						StartingHashKey: "0", EndingHashKey: "340282366920938463463374607431768211455"}); err != nil {
						b.Fatal(err)
					}
				}
				cc := &capacityClient{Client: testenv.DynamoDBClient(b)}
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				cs := make([]*lease.Coordinator, 2)
				for i := range cs {
					s, _ := lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: cc, Table: table})
					c, err := lease.NewCoordinator(lease.Config{Store: s, WorkerID: fmt.Sprintf("w%d", i), FailoverTime: failover})
					if err != nil {
						b.Fatal(err)
					}
					cs[i] = c
					wg.Add(1)
					go func() { defer wg.Done(); _ = c.Run(ctx) }()
				}
				wait.For(b, 60*time.Second, fmt.Sprintf("%d leases balanced over 2 workers", m), func() bool {
					return len(cs[0].Held())+len(cs[1].Held()) == m && len(cs[0].Held()) == m/2
				})
				time.Sleep(failover) // settle
				s0, u0, g0, i0, r0, w0 := cc.snapshot()
				window := 2 * failover
				time.Sleep(window) // measuring over a period of time
				s1, u1, g1, i1, r1, w1 := cc.snapshot()
				cancel()
				wg.Wait()
				perLeaseMin := func(v float64) float64 { return v / float64(m) / window.Minutes() * scale }
				b.ReportMetric(perLeaseMin(float64(u1-u0)), "writes/lease/min")
				b.ReportMetric(perLeaseMin(w1-w0), "WCU/lease/min")
				b.ReportMetric(perLeaseMin(float64(i1-i0+g1-g0)), "item-reads/lease/min")
				b.ReportMetric(perLeaseMin(r1-r0), "RCU/lease/min")
				b.ReportMetric(float64(s1-s0)/2/window.Minutes()*scale, "scans/worker/min")
			}
		})
	}
}
