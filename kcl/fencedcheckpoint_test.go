package kcl

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/lease"
)

// holdLease runs a coordinator on store until it holds the lease key, and
// stops it when the test ends.
func holdLease(t *testing.T, store lease.Store, worker, key string) (*lease.Coordinator, lease.Lease) {
	t.Helper()
	c, err := lease.NewCoordinator(lease.Config{Store: store, WorkerID: worker, FailoverTime: 3 * time.Second, TakeInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if l, ok := c.Lease(key); ok {
			return c, l
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not take lease %s", worker, key)
		}
		time.Sleep(10 * time.Millisecond) // polling for a condition, with a deadline
	}
}

func TestCheckpointer(t *testing.T) {
	ctx := context.Background()
	store := lease.NewMemoryStore()
	if _, err := store.Create(ctx, lease.Lease{Key: "shard-0", Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
		t.Fatal(err)
	}
	c, l := holdLease(t, store, "w1", "shard-0")
	cp := newFencedCheckpointer(c, l)
	if cp.Key() != "shard-0" || cp.Last() != checkpoint.TrimHorizon.SequenceNumber() {
		t.Fatalf("new checkpointer: key %q last %v", cp.Key(), cp.Last())
	}
	if err := cp.Checkpoint(ctx, "100", 0); !errors.Is(err, checkpoint.ErrBeyondDelivered) {
		t.Fatalf("checkpoint before delivery: %v, want checkpoint.ErrBeyondDelivered", err)
	}
	cp.Delivered(checkpoint.SequenceNumber{Sequence: "100", SubSequence: 2})
	cp.Delivered(checkpoint.SequenceNumber{Sequence: "90", SubSequence: 0}) // not past: ignored
	if err := cp.Checkpoint(ctx, "100", 3); !errors.Is(err, checkpoint.ErrBeyondDelivered) {
		t.Fatalf("past the last sub-sequence: %v, want checkpoint.ErrBeyondDelivered", err)
	}
	if err := cp.Checkpoint(ctx, "100", 1); err != nil {
		t.Fatal(err)
	}
	if err := cp.Checkpoint(ctx, "99", 5); !errors.Is(err, checkpoint.ErrBackwards) {
		t.Fatalf("backwards: %v, want checkpoint.ErrBackwards", err)
	}
	if err := cp.Checkpoint(ctx, "LATEST", 0); !errors.Is(err, checkpoint.ErrInvalid) {
		t.Fatalf("start sentinel: %v, want checkpoint.ErrInvalid", err)
	}
	if err := cp.Checkpoint(ctx, "x", 0); !errors.Is(err, checkpoint.ErrInvalid) {
		t.Fatalf("garbage: %v, want checkpoint.ErrInvalid", err)
	}
	got, _ := store.Get(ctx, "shard-0")
	if got.Checkpoint != "100" || got.CheckpointSubSequence != 1 || got.OwnerSwitchesSinceCheckpoint != 0 {
		t.Fatalf("stored: %+v", got)
	}

	if err := cp.PrepareCheckpoint(ctx, "100", 2); err != nil {
		t.Fatal(err)
	}
	if p, ok := cp.Pending(); !ok || p != (checkpoint.SequenceNumber{Sequence: "100", SubSequence: 2}) {
		t.Fatalf("pending: %v %v", p, ok)
	}
	got, _ = store.Get(ctx, "shard-0")
	if got.PendingCheckpoint != "100" || got.PendingCheckpointSubSequence != 2 || got.Checkpoint != "100" || got.CheckpointSubSequence != 1 {
		t.Fatalf("after prepare: %+v", got)
	}
	if err := cp.Checkpoint(ctx, "100", 2); err != nil {
		t.Fatal(err)
	}
	if _, ok := cp.Pending(); ok {
		t.Fatal("pending checkpoint not cleared by a checkpoint")
	}
	if err := cp.Checkpoint(ctx, "SHARD_END", 0); !errors.Is(err, checkpoint.ErrBeyondDelivered) {
		t.Fatalf("SHARD_END before the end was delivered: %v", err)
	}
	cp.Delivered(checkpoint.ShardEnd.SequenceNumber())
	if err := cp.Checkpoint(ctx, "SHARD_END", 0); err != nil {
		t.Fatal(err)
	}
	got, _ = store.Get(ctx, "shard-0")
	if got.Checkpoint != string(checkpoint.ShardEnd) || got.PendingCheckpoint != "" || !got.Finished() {
		t.Fatalf("after SHARD_END: %+v", got)
	}
}

// TestCheckpointFencedAfterLoss: once another worker took the lease, a
// checkpoint fails with lease.ErrLeaseLost and the table keeps the new owner's
// state.
func TestCheckpointFencedAfterLoss(t *testing.T) {
	ctx := context.Background()
	store := lease.NewMemoryStore()
	if _, err := store.Create(ctx, lease.Lease{Key: "shard-0", Checkpoint: "5"}); err != nil {
		t.Fatal(err)
	}
	c, l := holdLease(t, store, "w1", "shard-0")
	cp := newFencedCheckpointer(c, l)
	cp.Delivered(checkpoint.SequenceNumber{Sequence: "20", SubSequence: 0})
	if err := cp.Checkpoint(ctx, "10", 0); err != nil {
		t.Fatal(err)
	}
	c.StopTaking() // so that w1 does not take it back
	cur, _ := store.Get(ctx, "shard-0")
	stolen, err := store.Take(ctx, cur, "w2")
	if err != nil {
		t.Fatal(err)
	}
	err = cp.Checkpoint(ctx, "20", 0)
	if !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("checkpoint after the lease moved: %v, want lease.ErrLeaseLost", err)
	}
	if err := cp.PrepareCheckpoint(ctx, "20", 0); !errors.Is(err, lease.ErrLeaseLost) {
		t.Fatalf("prepare after the lease moved: %v", err)
	}
	got, _ := store.Get(ctx, "shard-0")
	if got.Owner != "w2" || got.Checkpoint != "10" || got.Counter != stolen.Counter {
		t.Fatalf("table changed after loss: %+v", got)
	}
}

// fakeUpdater applies updates to one in-memory lease.
type fakeUpdater struct{ l lease.Lease }

func (f *fakeUpdater) Update(_ context.Context, key string, fn func(*lease.Lease) error) (lease.Lease, error) {
	if key != f.l.Key {
		return lease.Lease{}, fmt.Errorf("update %q: %w", key, lease.ErrLeaseLost)
	}
	next := f.l.Clone()
	if err := fn(&next); err != nil {
		return lease.Lease{}, err
	}
	next.Counter++
	f.l = next
	return next.Clone(), nil
}

// TestCheckpointBelowTableIsBackwards: the check against the recorded
// checkpoint uses the lease as stored, not only the Checkpointer's memory.
func TestCheckpointBelowTableIsBackwards(t *testing.T) {
	u := &fakeUpdater{l: lease.Lease{Key: "s", Checkpoint: "10"}}
	cp := newFencedCheckpointer(u, lease.Lease{Key: "s", Checkpoint: string(checkpoint.TrimHorizon)}) // stale view
	cp.Delivered(checkpoint.SequenceNumber{Sequence: "50", SubSequence: 0})
	if err := cp.Checkpoint(context.Background(), "7", 0); !errors.Is(err, checkpoint.ErrBackwards) {
		t.Fatalf("checkpoint below the stored one: %v, want checkpoint.ErrBackwards", err)
	}
	if u.l.Checkpoint != "10" {
		t.Fatalf("stored checkpoint changed to %q", u.l.Checkpoint)
	}
}
