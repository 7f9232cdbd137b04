package lease_test

import (
	"context"
	"fmt"
	"github.com/kinesisgo/kinesis/checkpoint"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/lease"
)

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
				seed, _ := lease.NewDynamoDBStore(lease.DynamoDBConfig{Client: client, Table: table})
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
					s, _ := lease.NewDynamoDBStore(lease.DynamoDBConfig{Client: cc, Table: table})
					c, err := lease.NewCoordinator(lease.Config{Store: s, WorkerID: fmt.Sprintf("w%d", i), FailoverTime: failover})
					if err != nil {
						b.Fatal(err)
					}
					cs[i] = c
					wg.Add(1)
					go func() { defer wg.Done(); _ = c.Run(ctx) }()
				}
				deadline := time.Now().Add(60 * time.Second)
				for len(cs[0].Held())+len(cs[1].Held()) != m || len(cs[0].Held()) != m/2 {
					if time.Now().After(deadline) {
						b.Fatalf("no balance: %d + %d", len(cs[0].Held()), len(cs[1].Held()))
					}
					time.Sleep(50 * time.Millisecond)
				}
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
