package kpl

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

func TestSingleRecordSentRaw(t *testing.T) {
	f := newStream(t, 2)
	p := newProducer(t, f, Config{})
	r, err := p.PutSync(context.Background(), Record{PartitionKey: "only", ExplicitHashKey: "5", Data: []byte("alone")})
	if err != nil {
		t.Fatal(err)
	}
	if r.Aggregated || r.ShardID != "shardId-000000000000" {
		t.Fatalf("result %+v", r)
	}
	got := f.Records("shardId-000000000000")
	if len(got) != 1 || string(got[0].Data) != "alone" || got[0].PartitionKey != "only" || got[0].ExplicitHashKey != "5" {
		t.Fatalf("stored %+v", got)
	}
}

func TestCompression(t *testing.T) {
	for _, c := range []aggregation.Compression{aggregation.Gzip, aggregation.Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			f := newStream(t, 1)
			p := newProducer(t, f, Config{Compression: c})
			res := putMany(t, p, 500, randomKey)
			if err := p.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
			res.wait(t, time.Second)
			checkExactlyOnce(t, f, 500, randomKey) // UserRecords decodes compressed records
			compressed := 0
			for _, r := range f.Records("shardId-000000000000") {
				if aggregation.IsContainer(r.Data) && r.Data[3] != aggregation.Magic()[3] {
					compressed++
				}
			}
			if compressed == 0 {
				t.Fatal("no compressed aggregated records written")
			}
		})
	}
}

func TestRetriesFailedEntries(t *testing.T) {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(5, 5))
	f := newStreamOf(t, kinesistest.Config{Shards: 2, EntryFault: func(kinesistest.PutEntry) string {
		mu.Lock()
		defer mu.Unlock()
		switch x := r.IntN(10); {
		case x < 2:
			return "ProvisionedThroughputExceededException"
		case x < 4:
			return "InternalFailure"
		}
		return ""
	}})
	p := newProducer(t, f, Config{AggregationMaxSize: 300, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	const n = 2000
	res := putMany(t, p, n, randomKey)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	checkExactlyOnce(t, f, n, randomKey)
	retried := 0
	for id, r := range res.byID {
		if r.Err != nil {
			t.Fatalf("%s failed: %v", id, r.Err)
		}
		if r.Attempts > 1 {
			retried++
		}
	}
	if retried == 0 || testutil.ToFloat64(p.metrics.retried) == 0 || testutil.ToFloat64(p.metrics.throttled) == 0 {
		t.Fatalf("no retries seen: %d records with attempts > 1", retried)
	}
}

func TestRetriesFailedCalls(t *testing.T) {
	f := newStreamOf(t, kinesistest.Config{Shards: 2, Fault: faultOn(kinesistest.OpPutRecords, func(call int) error {
		switch {
		case call < 2:
			return serverError()
		case call < 4:
			return errors.New("connection reset by peer")
		}
		return nil
	})})
	p := newProducer(t, f, Config{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	res := putMany(t, p, 100, randomKey)
	if err := p.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	res.wait(t, time.Second)
	checkExactlyOnce(t, f, 100, randomKey)
}

func TestNonRetryableFailsAtOnce(t *testing.T) {
	for name, err := range map[string]error{
		"not found":     &types.ResourceNotFoundException{Message: aws.String("no stream")},
		"access denied": &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "no", Fault: smithy.FaultClient},
		"http 400": &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &httpResponse400},
			Err: errors.New("ValidationException")},
	} {
		t.Run(name, func(t *testing.T) {
			f := newStreamOf(t, kinesistest.Config{Fault: faultOn(kinesistest.OpPutRecords, func(int) error { return err })})
			p := newProducer(t, f, Config{})
			r, got := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
			if !errors.Is(got, err) || r.Attempts != 1 {
				t.Fatalf("PutSync = %+v, %v; want %v after 1 attempt", r, got, err)
			}
		})
	}
	t.Run("entry error", func(t *testing.T) {
		f := newStreamOf(t, kinesistest.Config{EntryFault: func(kinesistest.PutEntry) string { return "KMSAccessDeniedException" }})
		p := newProducer(t, f, Config{})
		_, got := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
		var ee *EntryError
		if !errors.As(got, &ee) || ee.Code != "KMSAccessDeniedException" {
			t.Fatalf("err = %v", got)
		}
	})
}

var httpResponse400 = http.Response{StatusCode: http.StatusBadRequest}

// A whole PutRecords call refused for throttling slows the shard's rate as
// throttled entries do, so the producer does not keep sending at RateLimit
// into a stream that pushes back.
func TestWholeCallThrottlingCutsRate(t *testing.T) {
	f := newStreamOf(t, kinesistest.Config{Fault: faultOn(kinesistest.OpPutRecords, func(call int) error {
		if call < 3 {
			return &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
		}
		return nil
	})})
	p := newProducer(t, f, Config{MinBackoff: 1, MaxBackoff: 2})
	r, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
	if err != nil || r.Attempts != 4 {
		t.Fatalf("PutSync = %+v, %v; want success after 4 attempts", r, err)
	}
	s := p.shards.Load().shards[0]
	s.mu.Lock()
	factor := s.rateFactor
	s.mu.Unlock()
	if factor >= 1 {
		t.Fatalf("rate factor %v after throttled calls, want below 1", factor)
	}
}

// A shard whose records keep failing waits before each retry a random time
// up to MinBackoff·2^(failures-1), capped at MaxBackoff (full jitter).
func TestRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failing = 8
		var mu sync.Mutex
		var calls []time.Time
		f := newStreamOf(t, kinesistest.Config{EntryFault: func(e kinesistest.PutEntry) string {
			mu.Lock()
			defer mu.Unlock()
			calls = append(calls, time.Now())
			if e.Call < failing {
				return "InternalFailure"
			}
			return ""
		}})
		p := newProducer(t, f, Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second, RecordTTL: time.Hour})
		r, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
		if err != nil || r.Attempts != failing+1 {
			t.Fatalf("PutSync = %+v, %v; want success after %d attempts", r, err, failing+1)
		}
		mu.Lock()
		defer mu.Unlock()
		var waited time.Duration
		for i := 1; i < len(calls); i++ {
			ceiling := min(100*time.Millisecond<<(i-1), time.Second)
			if gap := calls[i].Sub(calls[i-1]); gap < 0 || gap > ceiling {
				t.Errorf("retry %d came %v after the failure, want at most %v", i, gap, ceiling)
			}
			waited += calls[i].Sub(calls[i-1])
		}
		if waited == 0 {
			t.Error("no retry waited")
		}
	})
}

// TestBackoffOfOneShardDoesNotDelayOthers checks that a record for a healthy
// shard goes out at its linger deadline while another shard waits out a
// long backoff.
func TestBackoffOfOneShardDoesNotDelayOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failShard = "shardId-000000000000"
		var failed atomic.Int64 // entries failed on failShard
		f := newStreamOf(t, kinesistest.Config{Shards: 2, EntryFault: func(e kinesistest.PutEntry) string {
			if e.ShardID == failShard {
				failed.Add(1)
				return "InternalFailure"
			}
			return ""
		}})
		p := newProducer(t, f, Config{MinBackoff: time.Hour, MaxBackoff: time.Hour, RecordTTL: 2 * time.Hour})
		m := func() *shardMap {
			if _, err := p.PutSync(context.Background(), Record{PartitionKey: "k", ExplicitHashKey: maxKey, Data: []byte("x")}); err != nil {
				t.Fatal(err)
			}
			return p.shards.Load()
		}()
		if err := p.Put(context.Background(), Record{PartitionKey: "k", ExplicitHashKey: "0", Data: []byte("stuck")}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(DefaultRecordMaxBufferedTime) // the stuck record goes out, fails, and backs off
		synctest.Wait()
		if failed.Load() == 0 {
			t.Fatal("the failing shard was not tried at its linger deadline")
		}
		if s := m.shards[0]; s.id != failShard {
			t.Fatalf("first shard %s", s.id)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		start := time.Now()
		if _, err := p.PutSync(ctx, Record{PartitionKey: "k", ExplicitHashKey: maxKey, Data: []byte("healthy")}); err != nil {
			t.Fatalf("record for the healthy shard: %v", err)
		}
		if d := time.Since(start); d != DefaultRecordMaxBufferedTime {
			t.Fatalf("record for the healthy shard written after %v, want RecordMaxBufferedTime (%v)", d, DefaultRecordMaxBufferedTime)
		}
		// The stuck record fails at Close.
		cctx, ccancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer ccancel()
		if err := p.Close(cctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close = %v", err)
		}
	})
}
