package lease

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// flakyStore fails chosen calls.
type flakyStore struct {
	Store
	mu            sync.Mutex
	lostReplies   int   // renewals applied whose reply is then lost (reported as a timeout)
	cutReplies    int   // renewals applied whose connection is then cut (reported as a transient error)
	renewFailures int   // renewals failing with renewErr without being applied
	renewErr      error // default: a transient error
}

func (s *flakyStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	s.mu.Lock()
	lost, cut, fail := s.lostReplies > 0, s.cutReplies > 0, s.renewFailures > 0
	switch {
	case lost:
		s.lostReplies--
	case cut:
		s.cutReplies--
	case fail:
		s.renewFailures--
	}
	s.mu.Unlock()
	switch {
	case lost, cut:
		if _, err := s.Store.Renew(ctx, l); err != nil {
			return Lease{}, err
		}
		if cut {
			return Lease{}, fmt.Errorf("renew lease %q: connection reset after the request was sent", l.Key)
		}
		return Lease{}, fmt.Errorf("renew lease %q: waiting for the reply: %w", l.Key, context.DeadlineExceeded)
	case fail:
		if s.renewErr != nil {
			return Lease{}, s.renewErr
		}
		return Lease{}, errors.New("renew: connection reset")
	}
	return s.Store.Renew(ctx, l)
}

// TestSpuriousRenewFailure: a renewal that took effect but whose reply was
// lost fails its retry's condition; the re-read shows the counter that
// renewal produced, so the lease is kept, and counts as renewed from the
// time of the write it adopts: renewals whose replies are all lost keep the lease past
// FailoverTime, since the counter others see moves.
func TestSpuriousRenewFailure(t *testing.T) {
	t.Run("one reply lost", func(t *testing.T) {
		ctx := context.Background()
		mem := NewMemoryStore()
		store := &flakyStore{Store: mem}
		createLeases(t, store, 1)
		var lost atomic.Int32
		c := newTestCoordinator(t, store, newFakeClock(), "a", func(cfg *Config) { cfg.OnLost = func(Lease) { lost.Add(1) } })
		c.pollPass(ctx)
		store.lostReplies = 1
		c.renewPass(ctx)
		l, ok := c.Lease("shard-000")
		if !ok {
			t.Fatal("lease dropped after a spurious renewal failure")
		}
		stored, _ := mem.Get(ctx, "shard-000")
		if l.Counter != stored.Counter {
			t.Fatalf("held counter %d, table %d", l.Counter, stored.Counter)
		}
		if _, err := c.Update(ctx, "shard-000", func(l *Lease) error { l.Checkpoint = "12"; return nil }); err != nil {
			t.Fatalf("checkpoint after the spurious failure: %v", err)
		}
		c.events.flushForTest()
		if lost.Load() != 0 {
			t.Fatal("OnLost called for a spurious failure")
		}
	})
	t.Run("every reply cut for 3 FailoverTimes", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			mem := NewMemoryStore()
			store := &flakyStore{Store: mem, cutReplies: 1000}
			createLeases(t, store, 1)
			var lost atomic.Int32
			c := newTestCoordinator(t, store, nil, "a", func(cfg *Config) {
				cfg.FailoverTime, cfg.RenewInterval, cfg.TakeInterval = 9*time.Second, 3*time.Second, time.Hour
				cfg.OnLost = func(Lease) { lost.Add(1) }
			})
			stop := run(t, c)
			defer stop()
			time.Sleep(27 * time.Second)
			synctest.Wait()
			if _, ok := c.Lease("shard-000"); !ok || lost.Load() != 0 {
				t.Fatalf("lease dropped (OnLost %d times) although every renewal took effect", lost.Load())
			}
			if l, _ := mem.Get(context.Background(), "shard-000"); l.Owner != "a" || l.Counter < 9 {
				t.Fatalf("table: owner %q counter %d; want a, renewed at every pass", l.Owner, l.Counter)
			}
		})
	})
}

// TestRenewalStopsAfterFailoverTime: renewals run every RenewInterval; one
// that fails with a retryable error is tried storeAttempts times in its
// pass, a fatal one once; a worker that cannot renew for FailoverTime
// drops the lease at the first pass from then on, since another may have
// taken it.
func TestRenewalStopsAfterFailoverTime(t *testing.T) {
	for _, c := range []struct {
		name    string
		err     error
		perPass int
		kind    string
	}{
		{"connection reset", errors.New("renew: connection reset"), storeAttempts, "network"},
		{"throttled", &types.ProvisionedThroughputExceededException{}, storeAttempts, "throttled"},
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException", Fault: smithy.FaultClient}, 1, "AccessDeniedException"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				store := &flakyStore{Store: NewMemoryStore(), renewFailures: 1000, renewErr: c.err}
				createLeases(t, store, 1)
				reg := prometheus.NewRegistry()
				var lost atomic.Int32
				co := newTestCoordinator(t, store, nil, "a", func(cfg *Config) {
					cfg.FailoverTime, cfg.RenewInterval, cfg.TakeInterval = 9*time.Second, 3*time.Second, time.Hour
					cfg.Metrics = reg
					cfg.OnLost = func(Lease) { lost.Add(1) }
				})
				stop := run(t, co)
				defer stop()
				errs := func() float64 { return testutil.ToFloat64(co.metrics.storeErrors.WithLabelValues("renew", c.kind)) }
				synctest.Wait() // taken at 0s
				time.Sleep(9*time.Second - time.Nanosecond)
				synctest.Wait()
				if len(co.Held()) != 1 {
					t.Fatal("lease dropped before FailoverTime")
				}
				if n := errs(); n != float64(2*c.perPass) {
					t.Fatalf("renew errors of kind %s after two passes: %v, want %d", c.kind, n, 2*c.perPass)
				}
				time.Sleep(time.Nanosecond)
				synctest.Wait()
				// Dropped (and, as this worker leads and the table still
				// names it, taken again by the assignment pass the loss
				// asks for: takes do not fail here).
				if n := testutil.ToFloat64(co.metrics.lost); n != 1 || lost.Load() != 1 {
					t.Fatalf("lost metric %v, OnLost calls %d; want 1 and 1", n, lost.Load())
				}
				// The third pass tries once and finds FailoverTime passed.
				if n := errs(); n != float64(2*c.perPass+1) {
					t.Fatalf("renew errors of kind %s: %v, want %d", c.kind, n, 2*c.perPass+1)
				}
			})
		})
	}
}

// hangingStore's Checkpoint does not return until release is closed, as a
// call on a connection that went dead.
type hangingStore struct {
	Store
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (s *hangingStore) Checkpoint(ctx context.Context, l Lease) (Lease, error) {
	s.once.Do(func() { close(s.started) })
	<-s.release
	return Lease{}, errors.New("checkpoint: connection reset")
}

// TestRenewalsNotHeldUpByAWriteInFlight: a checkpoint call that hangs on one
// lease does not stop the renewal of the worker's other leases (they would
// all expire and move to other workers).
func TestRenewalsNotHeldUpByAWriteInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		store := &hangingStore{Store: NewMemoryStore(), started: make(chan struct{}), release: make(chan struct{})}
		createLeases(t, store, 2)
		c := newTestCoordinator(t, store, nil, "a", nil)
		c.pollPass(ctx)
		if len(c.Held()) != 2 {
			t.Fatalf("holds %d leases, want 2", len(c.Held()))
		}
		updated := make(chan error, 1)
		go func() {
			_, err := c.Update(ctx, "shard-000", func(l *Lease) error { l.Checkpoint = "12"; return nil })
			updated <- err
		}()
		<-store.started
		defer func() {
			close(store.release)
			<-updated
		}()
		before, _ := store.Get(ctx, "shard-001")
		passed := make(chan struct{})
		go func() { c.renewPass(ctx); close(passed) }()
		synctest.Wait()
		select {
		case <-passed:
		default:
			t.Fatal("the renewal pass waits for the hanging checkpoint")
		}
		if after, _ := store.Get(ctx, "shard-001"); after.Counter != before.Counter+1 {
			t.Fatalf("the other lease's counter went from %d to %d, want one renewal", before.Counter, after.Counter)
		}
	})
}

// TestDuplicateWorkerID: a process restarted with the WorkerID of one still
// running (a host or pod name) takes the leases it finds under that ID. The
// predecessor's next write fails its condition, and the re-read shows the
// counter moved by a write that is not its own, although the owner is its
// ID: it drops the lease (OnLost), its checkpoints fail with ErrLeaseLost,
// the duplicate is counted, and it does not take the lease back; the
// successor keeps renewing.
func TestDuplicateWorkerID(t *testing.T) {
	const key = "shard-000"
	for _, detectBy := range []string{"renewal", "checkpoint"} {
		t.Run(detectBy, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx := context.Background()
				store := NewMemoryStore()
				createLeases(t, store, 1)
				start := func(lost *atomic.Int32) *Coordinator {
					c := newTestCoordinator(t, store, nil, "a", func(cfg *Config) {
						cfg.FailoverTime, cfg.RenewInterval, cfg.TakeInterval = 9*time.Second, 3*time.Second, 1500*time.Millisecond
						cfg.Metrics = prometheus.NewRegistry()
						cfg.OnLost = func(Lease) { lost.Add(1) }
					})
					t.Cleanup(run(t, c))
					return c
				}
				var lostOld, lostNew atomic.Int32
				old := start(&lostOld)
				synctest.Wait() // takes the lease at 0s
				time.Sleep(time.Second)
				successor := start(&lostNew)
				synctest.Wait() // takes the lease it finds under its ID at 1s
				if _, ok := successor.Lease(key); !ok {
					t.Fatal("the successor did not take the lease it found under its ID")
				}
				if detectBy == "checkpoint" {
					_, err := old.Update(ctx, key, func(l *Lease) error { l.Checkpoint = "42"; return nil })
					if !errors.Is(err, ErrLeaseLost) {
						t.Fatalf("the predecessor's checkpoint: %v, want ErrLeaseLost", err)
					}
				} else {
					time.Sleep(2*time.Second - time.Nanosecond)
					synctest.Wait()
					if _, ok := old.Lease(key); !ok {
						t.Fatal("the predecessor dropped the lease before its renewal")
					}
					time.Sleep(time.Nanosecond) // its renewal at 3s, one RenewInterval after it took the lease
				}
				synctest.Wait()
				if n := lostOld.Load(); n != 1 {
					t.Fatalf("the predecessor's OnLost called %d times, want 1", n)
				}
				if _, ok := old.Lease(key); ok {
					t.Fatal("the predecessor still holds the lease")
				}
				if n := testutil.ToFloat64(old.metrics.duplicateWorkerID); n != 1 {
					t.Fatalf("duplicate WorkerID metric %v, want 1", n)
				}
				if _, err := old.Update(ctx, key, func(l *Lease) error { l.Checkpoint = "43"; return nil }); !errors.Is(err, ErrLeaseLost) {
					t.Fatalf("the predecessor's checkpoint after the loss: %v, want ErrLeaseLost", err)
				}
				before, _ := store.Get(ctx, key)
				time.Sleep(27 * time.Second)
				synctest.Wait()
				if _, ok := successor.Lease(key); !ok || lostNew.Load() != 0 {
					t.Fatalf("the successor lost the lease (OnLost %d times)", lostNew.Load())
				}
				if _, ok := old.Lease(key); ok {
					t.Fatal("the predecessor took the lease back")
				}
				if after, _ := store.Get(ctx, key); after.Owner != "a" || after.Counter != before.Counter+9 {
					t.Fatalf("table: owner %q counter %d; want a and %d (the successor's renewals only)", after.Owner, after.Counter, before.Counter+9)
				}
				if _, err := successor.Update(ctx, key, func(l *Lease) error { l.Checkpoint = "44"; return nil }); err != nil {
					t.Fatalf("the successor's checkpoint: %v", err)
				}
				if got, _ := store.Get(ctx, key); got.Checkpoint != "44" {
					t.Fatalf("checkpoint %q, want the successor's 44", got.Checkpoint)
				}
			})
		})
	}
}
