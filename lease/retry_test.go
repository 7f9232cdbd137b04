package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/backoff"
)

// failingStore fails every call of one operation with err, and counts the
// calls of each.
type failingStore struct {
	Store
	op  string
	err error

	mu    sync.Mutex
	calls map[string]int
}

func (s *failingStore) fail(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string]int{}
	}
	s.calls[op]++
	if op == s.op {
		return fmt.Errorf("%s lease: %w", op, s.err)
	}
	return nil
}

func (s *failingStore) count(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *failingStore) List(ctx context.Context) ([]Lease, error) {
	if err := s.fail("list"); err != nil {
		return nil, err
	}
	return s.Store.List(ctx)
}

func (s *failingStore) Create(ctx context.Context, l Lease) (Lease, error) {
	if err := s.fail("create"); err != nil {
		return Lease{}, err
	}
	return s.Store.Create(ctx, l)
}

func (s *failingStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	if err := s.fail("renew"); err != nil {
		return Lease{}, err
	}
	return s.Store.Renew(ctx, l)
}

func (s *failingStore) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	if err := s.fail("take"); err != nil {
		return Lease{}, err
	}
	return s.Store.Take(ctx, l, owner)
}

func (s *failingStore) Release(ctx context.Context, l Lease) (Lease, error) {
	if err := s.fail("release"); err != nil {
		return Lease{}, err
	}
	return s.Store.Release(ctx, l)
}

func (s *failingStore) Checkpoint(ctx context.Context, l Lease) (Lease, error) {
	if err := s.fail("checkpoint"); err != nil {
		return Lease{}, err
	}
	return s.Store.Checkpoint(ctx, l)
}

// failingKinesis fails every ListShards call with err.
type failingKinesis struct {
	err   error
	mu    sync.Mutex
	calls int
}

func (k *failingKinesis) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	k.mu.Lock()
	k.calls++
	k.mu.Unlock()
	return nil, k.err
}

// TestStoreCallRetries: each lease table call of the coordinator and the
// shard syncer that fails with a retryable error (throttling, a transient
// fault) is made storeAttempts times within its pass; one that fails with
// a fatal error, or with a lease error that another attempt would meet
// again, is made once. Failures are counted by operation and kind.
func TestStoreCallRetries(t *testing.T) {
	throttled := &smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient}
	unavailable := &smithy.GenericAPIError{Code: "ServiceUnavailable", Fault: smithy.FaultServer}
	denied := &smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient}
	errs := []struct {
		err   error
		calls int
		kind  string
	}{
		{throttled, storeAttempts, "throttled"},
		{unavailable, storeAttempts, "ServiceUnavailable"},
		{denied, 1, "AccessDeniedException"},
		{ErrMalformed, 1, "malformed"},
	}
	ctx := context.Background()
	// Coordinator calls: each op fails in a coordinator holding one lease
	// (none, for take).
	for _, op := range []string{"renew", "take", "release", "checkpoint"} {
		for _, e := range errs {
			t.Run(op+"/"+e.kind, func(t *testing.T) {
				store := &failingStore{Store: NewMemoryStore()}
				createLeases(t, store, 1)
				c := newTestCoordinator(t, store, nil, "a", nil)
				if op != "take" {
					c.pollPass(ctx)
					if len(c.Held()) != 1 {
						t.Fatal("lease not taken")
					}
				}
				store.op, store.err = op, e.err
				switch op {
				case "renew":
					c.renewPass(ctx)
				case "take":
					c.pollPass(ctx)
				case "release":
					if err := c.Release(ctx, "shard-000"); !errors.Is(err, e.err) {
						t.Fatalf("Release: %v, want %v", err, e.err)
					}
				case "checkpoint":
					if _, err := c.Update(ctx, "shard-000", func(l *Lease) error { l.Checkpoint = "1"; return nil }); !errors.Is(err, e.err) {
						t.Fatalf("Update: %v, want %v", err, e.err)
					}
				}
				if n := store.count(op); n != e.calls {
					t.Errorf("%d %s calls, want %d", n, op, e.calls)
				}
				if n := testutil.ToFloat64(c.metrics.storeErrors.WithLabelValues(op, e.kind)); n != float64(e.calls) {
					t.Errorf("kinesis_lease_store_errors_total{op=%q,kind=%q} = %v, want %d", op, e.kind, n, e.calls)
				}
			})
		}
	}
	// Shard syncer calls: Sync stops at the first call that keeps failing.
	for _, op := range []string{"list", "create", "list shards"} {
		for _, e := range errs[:3] {
			t.Run("sync "+op+"/"+e.kind, func(t *testing.T) {
				store := &failingStore{Store: NewMemoryStore()}
				var k KinesisAPI = lineageStream()
				fk := &failingKinesis{err: e.err}
				if op == "list shards" {
					k = fk
				} else {
					store.op, store.err = op, e.err
				}
				s, err := NewShardSyncer(ShardSyncConfig{Store: store, Kinesis: k, Stream: "s", InitialPosition: checkpoint.TrimHorizon})
				if err != nil {
					t.Fatal(err)
				}
				s.retry = backoff.Policy{}
				if err := s.Sync(ctx); !errors.Is(err, e.err) {
					t.Fatalf("Sync: %v, want %v", err, e.err)
				}
				n := store.count(op)
				if op == "list shards" {
					n = fk.calls
				}
				if n != e.calls {
					t.Errorf("%d %s calls, want %d", n, op, e.calls)
				}
			})
		}
	}
}
