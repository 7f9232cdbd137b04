package kcl_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl"
)

// slowProcessor takes 100 ms per batch, and never checkpoints (so that the
// lease's counter moves with renewals only); it notes what
// it was given and, at the start of each batch, the records the proxy had
// pushed but the processor not yet finished, and the goroutines running.
type slowProcessor struct {
	kcl.ProcessorFunc
	sent func() int64 // records the proxy pushed

	mu         sync.Mutex
	got        []string
	maxBatch   int // records
	backlog    []int64
	goroutines []int
	lost       atomic.Int32
}

func (p *slowProcessor) ProcessRecords(ctx context.Context, b *kcl.Batch) error {
	p.mu.Lock()
	p.backlog = append(p.backlog, p.sent()-int64(len(p.got)))
	p.goroutines = append(p.goroutines, goroutinesBesideConnections())
	p.maxBatch = max(p.maxBatch, len(b.Records))
	for _, r := range b.Records {
		id, _, _ := strings.Cut(string(r.Data), "-")
		p.got = append(p.got, id)
	}
	p.mu.Unlock()
	select { // the slow processor's work
	case <-time.After(100 * time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// goroutinesBesideConnections counts the running goroutines but those of
// the HTTP clients' connections (two per HTTP/1.1 connection, which the
// DynamoDB client opens as its calls overlap).
func goroutinesBesideConnections() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if !strings.Contains(g, "net/http.(*persistConn)") {
			count++
		}
	}
	return count
}

func (p *slowProcessor) LeaseLost(context.Context, *kcl.LeaseLostInput) { p.lost.Add(1) }

func (p *slowProcessor) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.got)
}

// A worker reading with enhanced fan-out whose processor takes 100 ms per
// batch while records keep coming for twice FailoverTime: its lease is
// renewed all along (never lost, its counter moving every RenewInterval),
// the records pushed ahead of the processor stay within PrefetchBytes,
// the HTTP/2 receive window and the events in hand, every record comes
// once and in order, the goroutines stay steady, and none is left once
// the worker stops.
func TestIntegrationFanOutWorkerSlowProcessor(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { // after the worker, the proxy and the clients' connections are closed
		goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
	})
	e := newModeEnv(t, 1, kcl.RetrievalFanOut)
	const recordSize, window, prefetch = 1 << 10, 64 << 10, 16 << 10
	proc := &slowProcessor{sent: func() int64 { return e.px.FanOutStats().Records }}
	cfg := e.config("slow")
	cfg.Processor = proc
	cfg.Kinesis = kcl.H2CKinesisClientWindow(t, e.kinURL, window)
	cfg.Retrieval.PrefetchBytes = prefetch
	e.start(cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// 60 calls of 10 records of 1 KiB, 100 ms apart: about 6 s, twice
	// FailoverTime.
	const calls, perCall = 60, 10
	start := time.Now()
	var counters []int64
	for i := range calls {
		entries := make([]kintypes.PutRecordsRequestEntry, perCall)
		for j := range entries {
			data := fmt.Appendf(nil, "r%04d-", i*perCall+j)
			entries[j] = kintypes.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: append(data, make([]byte, recordSize-len(data))...)}
		}
		out, err := e.kinesis.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(e.stream), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("PutRecords: %v (%d failed)", err, aws.ToInt32(out.FailedRecordCount))
		}
		if i%10 == 9 {
			if ls, ok := e.readLeases(); ok && len(ls) == 1 && ls[0].Owner == "slow" {
				counters = append(counters, ls[0].Counter)
			}
		}
		time.Sleep(100 * time.Millisecond) // pacing the producer, not waiting for a condition
	}
	wait.For(t, time.Minute, "every record", func() bool { return proc.count() >= calls*perCall })
	elapsed := time.Since(start)

	proc.mu.Lock()
	defer proc.mu.Unlock()
	var want []string
	for i := range calls * perCall {
		want = append(want, fmt.Sprintf("r%04d", i))
	}
	if !slices.Equal(proc.got, want) {
		t.Errorf("got %d records, want %d once each and in order: %v", len(proc.got), len(want), proc.got)
	}
	if n := proc.lost.Load(); n != 0 {
		t.Errorf("the lease was lost %d times", n)
	}
	// Renewed every RenewInterval (FailoverTime/3, 1 s): the samples, about
	// 1 s apart, see the counter grow at each.
	for i := 1; i < len(counters); i++ {
		if counters[i] <= counters[i-1] {
			t.Errorf("lease counters %v over %v: not renewed between samples %d and %d", counters, elapsed, i-1, i)
		}
	}
	if len(counters) < 4 {
		t.Errorf("lease owned by the worker at %d of 6 samples (%v)", len(counters), counters)
	}
	// Pushed ahead of the processor: the batch being processed and the one
	// fetched ahead of it (PrefetchBytes), the event the SDK's decoder holds,
	// and the receive window.
	bound := int64((prefetch+window)/recordSize + 3*proc.maxBatch)
	if m := slices.Max(proc.backlog); m > bound {
		t.Errorf("records pushed ahead of the processor reached %d, want at most %d (PrefetchBytes %d, window %d, largest batch %d records): %v",
			m, bound, prefetch, window, proc.maxBatch, proc.backlog)
	}
	// No growth: the later half of the run has no more goroutines than the
	// first (the goroutines of an earlier test may still be ending when
	// this one starts).
	half := len(proc.goroutines) / 2
	if lo, hi := slices.Min(proc.goroutines[:half]), slices.Max(proc.goroutines[half:]); hi-lo > 5 {
		t.Errorf("goroutines while processing grew from %d to %d: %v", lo, hi, proc.goroutines)
	}
	t.Logf("%d batches (largest %d records) over %v; backlog at most %d records (bound %d); goroutines %d..%d; lease counters %v",
		len(proc.backlog), proc.maxBatch, elapsed, slices.Max(proc.backlog), bound, slices.Min(proc.goroutines), slices.Max(proc.goroutines), counters)
}

// Two workers reading with enhanced fan-out through a proxy that cuts 5%
// of the subscriptions' streams and ends another 5% with an
// InternalFailureException event: the subscriptions are opened again from
// the last continuation, and every record comes, in order per key, none
// twice (each batch is checkpointed, and no lease moves after the workers
// are balanced).
func TestIntegrationFanOutWorkerSubscriptionFaults(t *testing.T) {
	e := newModeEnv(t, 2, kcl.RetrievalFanOut)
	px := proxy.StartForTest(t, proxy.Config{Seed: 11, ShardLifecycle: true,
		FanOut: &proxy.FanOutConfig{ConsumerDelay: -1, Faults: proxy.FanOutFaults{Cut: 0.05, InternalFailure: 0.05}}})
	e.px, e.kinURL = px, px.URL()
	for _, id := range []string{"worker-a", "worker-b"} {
		cfg := e.config(id)
		cfg.Retrieval.BackoffBase, cfg.Retrieval.BackoffMax = 50*time.Millisecond, 500*time.Millisecond
		e.start(cfg)
	}
	e.waitBalanced(1, 1)
	p := &producer{client: e.kinesis, stream: e.stream, pause: 50 * time.Millisecond}
	p.put(t, 20, 40) // 800 records over about 2 s
	wait.For(t, time.Minute, "every record", func() bool { return e.collector.distinct() >= p.total() })
	if dups := checkKeyOrder(t, e.collector.snapshot(), p.count); len(dups) > 0 {
		t.Errorf("%d records delivered twice, first %+v", len(dups), dups[0])
	}
	st := px.FanOutStats()
	t.Logf("proxy fan-out: %+v", st)
	if st.Faults == 0 || st.Subscriptions <= 2 {
		t.Errorf("proxy fan-out stats %+v: want faults injected and subscriptions opened again", st)
	}
}
