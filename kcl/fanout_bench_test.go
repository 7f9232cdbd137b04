package kcl

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/streamref"
)

// BenchmarkReadLatency measures, through the limits proxy in front of
// kinesis-mock, the time from a record's PutRecord call to its delivery by
// the shard's reader (the batch the worker hands to ProcessRecords), for
// polling (GetRecords with the default RetrievalConfig) and for enhanced
// fan-out (SubscribeToShard), with one application reading the shard and
// with two. Each iteration puts one record (records=1: about 20 records/s)
// or ten in one PutRecords call (records=10: about 200 records/s, so that
// polling readers never wait idle), after a random pause of 0 to 100 ms.
// Reported: p50-ms and p99-ms over every record and application, and
// throttled/op, the GetRecords calls the proxy refused for the shard's 5
// calls/s shared by its polling applications.
//
//	go test -run '^$' -bench ReadLatency -benchtime 200x ./kcl
//
// The proxy reads the emulator every 50 ms for a subscription
// (FanOutConfig.PollInterval), which bounds fan-out's latency here; AWS
// pushes records as they arrive.
func BenchmarkReadLatency(b *testing.B) {
	for _, perPut := range []int{1, 10} {
		for _, mode := range []string{"polling", "fanout"} {
			for _, apps := range []int{1, 2} {
				b.Run(fmt.Sprintf("records=%d/%s/apps=%d", perPut, mode, apps), func(b *testing.B) { benchReadLatency(b, mode == "fanout", apps, perPut) })
			}
		}
	}
}

func benchReadLatency(b *testing.B, fanOut bool, apps, perPut int) {
	p := proxy.StartForTest(b, proxy.Config{FanOut: &proxy.FanOutConfig{ConsumerDelay: -1}})
	client := h2cKinesisClient(b, p.URL())
	stream := testenv.CreateStream(b, client, 1)
	ref, err := streamref.Parse(stream)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	delivered := make([]map[int]time.Time, apps)
	var readers sync.WaitGroup
	defer readers.Wait()
	defer cancel()
	for app := range apps {
		delivered[app] = map[int]time.Time{}
		out := make(chan fetched)
		cfg := RetrievalConfig{}.withDefaults()
		latest := startPosition{kind: types.ShardIteratorTypeLatest}
		if fanOut {
			arn, err := ensureConsumer(ctx, client, ref, "app"+strconv.Itoa(app))
			if err != nil {
				b.Fatal(err)
			}
			s := newSubscriber(sdkSubscribe(client), client, ref, arn, shard0, latest, cfg, zap.NewNop(), newMetrics(nil), newFanOutMetrics(nil))
			readers.Go(func() { s.run(ctx, out) })
			readers.Go(func() { collectTimes(out, s.done, &mu, delivered[app]) })
		} else {
			pl := newPoller(client, ref, shard0, latest, cfg, zap.NewNop(), newMetrics(nil))
			readers.Go(func() { pl.run(ctx, out) })
			readers.Go(func() { collectTimes(out, pl.done, &mu, delivered[app]) })
		}
	}
	time.Sleep(2 * time.Second) // the readers' LATEST positions are taken before the first put

	put := make([]time.Time, 0, b.N*perPut)
	throttledBefore := p.Stats().Throttled
	for b.Loop() {
		time.Sleep(rand.N(100 * time.Millisecond))
		entries := make([]types.PutRecordsRequestEntry, perPut)
		now := time.Now()
		for j := range entries {
			entries[j] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte(strconv.Itoa(len(put)))}
			put = append(put, now)
		}
		out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) > 0 {
			b.Fatalf("PutRecords: %v (%d failed)", err, aws.ToInt32(out.FailedRecordCount))
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := 0
		for _, d := range delivered {
			n += len(d)
		}
		mu.Unlock()
		if n == apps*len(put) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d deliveries within 30s of the last put", n, apps*len(put))
		}
		time.Sleep(10 * time.Millisecond)
	}
	throttled := p.Stats().Throttled - throttledBefore
	var lat []time.Duration
	for _, d := range delivered {
		for i, at := range d {
			lat = append(lat, at.Sub(put[i]))
		}
	}
	slices.Sort(lat)
	pct := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(throttled)/float64(b.N), "throttled/op")
}

// collectTimes notes when each record (its data is its index) is delivered.
func collectTimes(out <-chan fetched, done func(uint64), mu *sync.Mutex, at map[int]time.Time) {
	for f := range out {
		now := time.Now()
		mu.Lock()
		for _, r := range f.records {
			if i, err := strconv.Atoi(string(r.Data)); err == nil {
				if _, seen := at[i]; !seen {
					at[i] = now
				}
			}
		}
		mu.Unlock()
		done(f.seqNo)
	}
}
