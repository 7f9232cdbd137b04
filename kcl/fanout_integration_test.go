package kcl

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

// h2cKinesisClient is a Kinesis client for endpoint that speaks HTTP/2
// without TLS only, as fan-out runs over HTTP/2.
func h2cKinesisClient(t testing.TB, endpoint string) *kinesis.Client {
	t.Helper()
	return h2cKinesisClientWindow(t, endpoint, 0)
}

// h2cKinesisClientWindow is h2cKinesisClient with an HTTP/2 receive window
// of window bytes per stream (0: Go's default, 4 MiB), which bounds the
// event bytes a subscription holds unread in the client.
func h2cKinesisClientWindow(t testing.TB, endpoint string, window int) *kinesis.Client {
	t.Helper()
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: protos, HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: window}}
	t.Cleanup(tr.CloseIdleConnections)
	return kinesis.NewFromConfig(testenv.AWSConfig(t, endpoint), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.HTTPClient = &http.Client{Transport: tr}
	})
}

// A shard read through the proxy's fan-out across three 5-minute
// subscription ends (on the proxy's clock) and a take-over by another
// subscriber (whose ResourceInUseException the subscriber outlasts, taking
// the subscription back): every record once, in order. Two workers
// registering the consumer at once get the same ACTIVE consumer.
func TestIntegrationFanOutSubscriptionLifetime(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { // after the proxy and the client's connections are closed
		goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
	})
	clock := testenv.NewClock(time.Unix(1.7e9, 0))
	p := proxy.StartForTest(t, proxy.Config{Now: clock.Now, FanOut: &proxy.FanOutConfig{ConsumerDelay: time.Second}})
	client := h2cKinesisClient(t, p.URL())
	stream := testenv.CreateStream(t, client, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// advanceUntil moves the proxy's clock 50 ms every 10 ms (wait.Poll)
	// until cond holds: the proxy's time runs five times faster.
	advanceUntil := func(what string, cond func() bool) {
		t.Helper()
		wait.For(t, 30*time.Second, what, func() bool { clock.Advance(50 * time.Millisecond); return cond() })
	}

	ref := streamNamed(t, stream)
	arns := make([]string, 2)
	errs := make([]error, 2)
	var registering sync.WaitGroup
	for i := range arns {
		registering.Go(func() { arns[i], errs[i] = ensureConsumer(ctx, client, ref, "app") })
	}
	regDone := make(chan struct{})
	go func() { registering.Wait(); close(regDone) }()
	advanceUntil("the consumer to be ACTIVE", func() bool {
		select {
		case <-regDone:
			return true
		default:
			return false
		}
	})
	if errs[0] != nil || errs[1] != nil || arns[0] != arns[1] || !strings.Contains(arns[0], "/consumer/app:") {
		t.Fatalf("ensureConsumer: %q %v, %q %v; want one consumer ARN", arns[0], errs[0], arns[1], errs[1])
	}

	cfg := RetrievalConfig{BackoffBase: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond}.withDefaults()
	fm := newFanOutMetrics(nil)
	s := newSubscriber(sdkSubscribe(client), client, ref, arns[0], shard0, startPosition{kind: types.ShardIteratorTypeTrimHorizon},
		cfg, zaptest.NewLogger(t), newMetrics(nil), fm)
	runCtx, stop := context.WithCancel(ctx)
	out := make(chan fetched)
	var mu sync.Mutex
	var got []string
	var running sync.WaitGroup
	running.Go(func() { s.run(runCtx, out) })
	running.Go(func() {
		for f := range out {
			mu.Lock()
			for _, r := range f.records {
				got = append(got, string(r.Data))
			}
			mu.Unlock()
			s.done(f.seqNo)
		}
	})
	received := func(n int) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= n }
	}
	next := 0
	put := func(n int) {
		t.Helper()
		for range n {
			if _, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: &stream, PartitionKey: aws.String("k"),
				Data: fmt.Appendf(nil, "r%03d", next)}); err != nil {
				t.Fatalf("PutRecord: %v", err)
			}
			next++
		}
	}

	put(10)
	advanceUntil("the first 10 records", received(10))
	for i := 1; i <= 3; i++ {
		clock.Advance(proxy.DefaultSubscriptionLifetime)
		advanceUntil("the subscription to end at 5 minutes", func() bool { return p.FanOutStats().Expired >= int64(i) })
		put(10)
		advanceUntil("the records after a renewal", received(10*(i+1)))
	}

	// Another subscriber of the same consumer takes the shard over, more
	// than 5 s after the last subscription.
	clock.Advance(6 * time.Second)
	intruder, err := client.SubscribeToShard(ctx, &kinesis.SubscribeToShardInput{ConsumerARN: &arns[0], ShardId: aws.String(shard0),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	if err != nil {
		t.Fatalf("the other SubscribeToShard: %v", err)
	}
	is := intruder.GetStream()
	defer is.Close()
	intruderDone := make(chan error, 1)
	go func() {
		for range is.Events() {
		}
		intruderDone <- is.Err()
	}()
	put(10)
	advanceUntil("the records after the take-over", received(50))
	var inUse *types.ResourceInUseException
	select {
	case err := <-intruderDone:
		if !errors.As(err, &inUse) {
			t.Errorf("the other subscription ended with %v, want ResourceInUseException (taken back)", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("the other subscription was not taken back")
	}

	stop()
	running.Wait()
	var want []string
	for i := range 50 {
		want = append(want, fmt.Sprintf("r%03d", i))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("read %d records\n%v\nwant\n%v", len(got), got, want)
	}
	if v := testutil.ToFloat64(fm.subscriptions.WithLabelValues("renewed")); v < 3 {
		t.Errorf("subscriptions renewed = %v, want at least 3", v)
	}
	if v := testutil.ToFloat64(fm.subscribeErrors.WithLabelValues("ResourceInUseException")); v < 1 {
		t.Errorf("ResourceInUseException counted %v times, want at least 1", v)
	}
	if st := p.FanOutStats(); st.TakenOver < 2 {
		t.Errorf("proxy stats %+v: want 2 take-overs (the other's, then the subscriber's)", st)
	}
}

// A processor taking 100 ms per batch while records keep coming: every
// record once and in order, the goroutines of the subscription steady
// (the SDK's reader waits on the unread event; nothing queues up in
// goroutines), none left once it stops.
func TestIntegrationFanOutSlowProcessor(t *testing.T) {
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"))
	})
	p := proxy.StartForTest(t, proxy.Config{FanOut: &proxy.FanOutConfig{ConsumerDelay: -1}})
	client := h2cKinesisClient(t, p.URL())
	stream := testenv.CreateStream(t, client, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ref := streamNamed(t, stream)
	arn, err := ensureConsumer(ctx, client, ref, "slow")
	if err != nil {
		t.Fatal(err)
	}
	cfg := RetrievalConfig{PrefetchBytes: 64}.withDefaults() // every batch is "large": none fetched ahead
	s := newSubscriber(sdkSubscribe(client), client, ref, arn, shard0, startPosition{kind: types.ShardIteratorTypeTrimHorizon},
		cfg, zaptest.NewLogger(t), newMetrics(nil), newFanOutMetrics(nil))
	runCtx, stop := context.WithCancel(ctx)
	out := make(chan fetched)
	var running sync.WaitGroup
	running.Go(func() { s.run(runCtx, out) })

	const batches, perBatch = 20, 10
	putting := make(chan error, 1)
	go func() {
		for i := range batches {
			entries := make([]types.PutRecordsRequestEntry, perBatch)
			for j := range entries {
				entries[j] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: fmt.Appendf(nil, "r%03d", i*perBatch+j)}
			}
			if _, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: &stream, Records: entries}); err != nil {
				putting <- err
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		putting <- nil
	}()
	var got []string
	var goroutines []int
	timeout := time.After(60 * time.Second)
	for len(got) < batches*perBatch {
		select {
		case f := <-out:
			for _, r := range f.records {
				got = append(got, string(r.Data))
			}
			time.Sleep(100 * time.Millisecond) // the slow processor
			goroutines = append(goroutines, runtime.NumGoroutine())
			s.done(f.seqNo)
		case <-timeout:
			t.Fatalf("%d of %d records within 60s", len(got), batches*perBatch)
		}
	}
	if err := <-putting; err != nil {
		t.Fatal(err)
	}
	stop()
	running.Wait()
	for i, r := range got {
		if want := fmt.Sprintf("r%03d", i); r != want {
			t.Fatalf("record %d is %s, want %s (read %v)", i, r, want, got)
		}
	}
	if lo, hi := slices.Min(goroutines), slices.Max(goroutines); hi-lo > 5 {
		t.Errorf("goroutines while processing ranged from %d to %d: %v", lo, hi, goroutines)
	}
}
