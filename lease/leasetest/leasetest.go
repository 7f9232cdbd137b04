// Package leasetest checks implementations of lease.Store, as
// testing/fstest checks those of fs.FS: a lease table kept somewhere else
// than in DynamoDB that passes TestStore can back a lease.Coordinator, a
// lease.ShardSyncer and a kcl.Worker (kcl.Config.LeaseStore).
//
// In a test file of the package that implements the store:
//
//	func TestStore(t *testing.T) {
//		leasetest.TestStore(t, func(t *testing.T) lease.Store {
//			return newStore(t) // an empty, ready table, removed by t.Cleanup
//		})
//	}
//
// lease.MemoryStore and lease.DynamoDBStore pass it: the lease package's
// tests run it over the memory store, over a DynamoDB table, and over a
// DynamoDB table behind injected throttling. The protocol the contract
// serves is described in docs/design.md ("Lease protocol").
package leasetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/lease"
)

// Timeout bounds each subtest of TestStore.
const Timeout = time.Minute

// TestStore checks that the stores newStore returns keep the lease.Store
// contract, one subtest per property:
//
//   - EnsureTable: succeeds on a ready table and keeps what it holds.
//   - CreateExists: Create writes a lease once; a second Create of its key
//     fails with lease.ErrExists and changes nothing.
//   - GetNotFound: Get returns every field as written; a missing key is
//     lease.ErrNotFound.
//   - List: every lease, ordered by key, as Get returns it (enough leases
//     for a store that reads in pages to need several).
//   - RenewFencing, TakeFencing: each update is conditional on the counter
//     (and, for Renew, the owner), increments it by one, and returns the
//     lease as stored; a failed condition is lease.ErrConflict, also for a
//     lease that does not exist, and changes nothing.
//   - Release: conditional on counter and owner; removes the owner.
//   - Checkpoint: writes the progress fields only, conditional on counter
//     and owner; clearing the pending checkpoint also removes the Java
//     KCL's pendingCheckpointState.
//   - Delete: conditional on the counter.
//   - UnknownAttributesKept: attributes the lease package does not know
//     (Lease.Extra) survive every write.
//   - ReturnsCopies: changing a lease passed to or returned by the store
//     does not change the stored one.
//   - ConcurrentTakes: of concurrent takes on one counter exactly one wins.
//   - ConcurrentRenewals: concurrent conditional writes each take effect
//     once, none is lost.
//
// newStore is called once per subtest, with the subtest's t; it must
// return a store on a table of its own, empty and ready, and may use t to
// fail or to remove the table afterwards (t.Cleanup). The subtests run in
// parallel (t.Parallel), since creating a table can take a while; each
// gets a context that ends after Timeout.
func TestStore(t *testing.T, newStore func(t *testing.T) lease.Store) {
	t.Helper()
	for _, p := range properties {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), Timeout)
			defer cancel()
			if err := p.check(ctx, newStore(t)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A property is one part of the contract: check returns how s breaks it,
// or nil.
type property struct {
	name  string
	check func(ctx context.Context, s lease.Store) error
}

var properties = []property{
	{"EnsureTable", checkEnsureTable},
	{"CreateExists", checkCreateExists},
	{"GetNotFound", checkGetNotFound},
	{"List", checkList},
	{"RenewFencing", checkRenewFencing},
	{"TakeFencing", checkTakeFencing},
	{"Release", checkRelease},
	{"Checkpoint", checkCheckpoint},
	{"LatestTimestamp", checkLatestTimestamp},
	{"HandOver", checkHandOver},
	{"Throughput", checkThroughput},
	{"Delete", checkDelete},
	{"UnknownAttributesKept", checkUnknownAttributesKept},
	{"ReturnsCopies", checkReturnsCopies},
	{"ConcurrentTakes", checkConcurrentTakes},
	{"ConcurrentRenewals", checkConcurrentRenewals},
}

const (
	seq1 = "49590338271490256608559692538361571095921575989136588801"
	seq2 = "49590338271490256608559692538361571095921575989136588802"
	seq3 = "49590338271490256608559692538361571095921575989136588900"
)

// extra returns attributes the lease package does not know, among them the
// Java KCL's pendingCheckpointState, which goes with the pending
// checkpoint.
func extra() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"isMarkedForLeaseSteal":  &types.AttributeValueMemberBOOL{Value: false},
		"someFutureAttribute":    &types.AttributeValueMemberS{Value: "kept"},
		"pendingCheckpointState": &types.AttributeValueMemberB{Value: []byte{1, 2, 3}},
	}
}

// full returns a lease with every field set.
func full() lease.Lease {
	return lease.Lease{
		Key: "shardId-000000000001", Owner: "w1", Counter: 7,
		Checkpoint: seq1, CheckpointSubSequence: 3,
		PendingCheckpoint: seq2, PendingCheckpointSubSequence: 1,
		OwnerSwitchesSinceCheckpoint: 2,
		ParentShardIDs:               []string{"shardId-000000000000", "shardId-000000000002"},
		ChildShardIDs:                []string{"shardId-000000000005"},
		StartingHashKey:              "0", EndingHashKey: "340282366920938463463374607431768211455",
		Extra: extra(),
	}
}

// unowned returns a minimal lease, as the shard syncer creates one.
func unowned(key string) lease.Lease {
	return lease.Lease{Key: key, Checkpoint: string(checkpoint.TrimHorizon)}
}

// failf returns a property's failure. Its message is shown as it is, as
// the subtest's failure, and starts with the name of the method at fault.
func failf(format string, args ...any) error { return fmt.Errorf(format, args...) }

// wantErr reports an error unless err is target.
func wantErr(err, target error, what string) error {
	if !errors.Is(err, target) {
		return failf("%s: got error %v, want %v", what, err, target)
	}
	return nil
}

// wantLease reports an error unless got equals want.
func wantLease(got, want lease.Lease, what string) error {
	if !reflect.DeepEqual(got, want) {
		return failf("%s:\n got %s\nwant %s", what, describe(got), describe(want))
	}
	return nil
}

// describe prints a lease with the values of its unknown attributes.
func describe(l lease.Lease) string {
	x := l.Extra
	l.Extra = nil
	s := fmt.Sprintf("%+v", l)
	if x == nil {
		return s
	}
	var attrs []string
	for _, k := range slices.Sorted(maps.Keys(x)) {
		attrs = append(attrs, k+"="+describeValue(x[k]))
	}
	return s + ", where Extra is {" + strings.Join(attrs, " ") + "}"
}

func describeValue(v types.AttributeValue) string {
	switch v := v.(type) {
	case *types.AttributeValueMemberS:
		return fmt.Sprintf("S:%q", v.Value)
	case *types.AttributeValueMemberN:
		return "N:" + v.Value
	case *types.AttributeValueMemberB:
		return fmt.Sprintf("B:%x", v.Value)
	}
	return fmt.Sprintf("%T", v)
}

// unchanged reports an error unless the stored lease is still want: a
// failed write must change nothing.
func unchanged(ctx context.Context, s lease.Store, want lease.Lease, after string) error {
	got, err := s.Get(ctx, want.Key)
	if err != nil {
		return failf("Get after %s: %w", after, err)
	}
	return wantLease(got, want, "stored lease after "+after+" (a failed write must change nothing)")
}

func create(ctx context.Context, s lease.Store, l lease.Lease) (lease.Lease, error) {
	c, err := s.Create(ctx, l)
	if err != nil {
		return lease.Lease{}, failf("Create(%q): %w", l.Key, err)
	}
	return c, nil
}

func checkEnsureTable(ctx context.Context, s lease.Store) error {
	l, err := create(ctx, s, full())
	if err != nil {
		return err
	}
	if err := s.EnsureTable(ctx); err != nil {
		return failf("EnsureTable on a ready table: %w", err)
	}
	return unchanged(ctx, s, l, "EnsureTable")
}

func checkCreateExists(ctx context.Context, s lease.Store) error {
	l, err := create(ctx, s, full())
	if err != nil {
		return err
	}
	if err := wantLease(l, full(), "Create's result"); err != nil {
		return err
	}
	other := unowned(full().Key)
	other.Owner, other.Counter = "w9", 100
	if _, err := s.Create(ctx, other); err != nil {
		if err := wantErr(err, lease.ErrExists, "second Create of a key"); err != nil {
			return err
		}
	} else {
		return failf("second Create of a key succeeded, want lease.ErrExists")
	}
	if err := unchanged(ctx, s, full(), "a second Create"); err != nil {
		return err
	}
	if _, err := s.Create(ctx, lease.Lease{Checkpoint: string(checkpoint.TrimHorizon)}); err == nil {
		return failf("Create of a lease with an empty key succeeded")
	}
	// Owner and Counter are written as given, also for a lease created
	// unowned at zero.
	u, err := create(ctx, s, unowned("shardId-000000000009"))
	if err != nil {
		return err
	}
	return unchanged(ctx, s, u, "Create")
}

func checkGetNotFound(ctx context.Context, s lease.Store) error {
	if _, err := create(ctx, s, full()); err != nil {
		return err
	}
	got, err := s.Get(ctx, full().Key)
	if err != nil {
		return failf("Get: %w", err)
	}
	if err := wantLease(got, full(), "Get"); err != nil {
		return err
	}
	_, err = s.Get(ctx, "shardId-404")
	return wantErr(err, lease.ErrNotFound, "Get of a missing key")
}

func checkList(ctx context.Context, s lease.Store) error {
	if ls, err := s.List(ctx); err != nil || len(ls) != 0 {
		return failf("List of an empty table: %d leases, %v", len(ls), err)
	}
	const n = 25
	for i := range n {
		if _, err := create(ctx, s, unowned(fmt.Sprintf("k%03d", (i*7)%n))); err != nil { // not in key order
			return err
		}
	}
	if _, err := create(ctx, s, full()); err != nil {
		return err
	}
	ls, err := s.List(ctx)
	if err != nil {
		return failf("List: %w", err)
	}
	if len(ls) != n+1 {
		return failf("List: %d leases, want %d", len(ls), n+1)
	}
	if !slices.IsSortedFunc(ls, func(a, b lease.Lease) int { return strings.Compare(a.Key, b.Key) }) {
		return failf("List: leases not ordered by key: %v", keys(ls))
	}
	for _, l := range ls {
		got, err := s.Get(ctx, l.Key)
		if err != nil {
			return failf("Get(%q): %w", l.Key, err)
		}
		if err := wantLease(l, got, "List's "+l.Key+" against Get's"); err != nil {
			return err
		}
	}
	if err := wantLease(ls[n], full(), "List's full lease"); err != nil {
		return err
	}
	return wantLease(ls[0], unowned("k000"), "List's minimal lease")
}

func checkRenewFencing(ctx context.Context, s lease.Store) error {
	l, err := create(ctx, s, full())
	if err != nil {
		return err
	}
	r, err := s.Renew(ctx, l)
	if err != nil {
		return failf("Renew: %w", err)
	}
	want := full()
	want.Counter++
	if err := wantLease(r, want, "Renew's result"); err != nil {
		return err
	}
	if err := unchanged(ctx, s, want, "Renew"); err != nil {
		return failf("Renew did not store what it returned: %w", err)
	}
	_, err = s.Renew(ctx, l)
	if err := wantErr(err, lease.ErrConflict, "Renew with the counter before the last write"); err != nil {
		return err
	}
	ahead := r
	ahead.Counter++
	_, err = s.Renew(ctx, ahead)
	if err := wantErr(err, lease.ErrConflict, "Renew with a counter ahead of the table's"); err != nil {
		return err
	}
	other := r
	other.Owner = "w2"
	_, err = s.Renew(ctx, other)
	if err := wantErr(err, lease.ErrConflict, "Renew by another owner"); err != nil {
		return err
	}
	none := r
	none.Owner = ""
	_, err = s.Renew(ctx, none)
	if err := wantErr(err, lease.ErrConflict, "Renew expecting no owner of an owned lease"); err != nil {
		return err
	}
	_, err = s.Renew(ctx, lease.Lease{Key: "shardId-404", Owner: "w1"})
	if err := wantErr(err, lease.ErrConflict, "Renew of a missing lease"); err != nil {
		return err
	}
	if _, err := s.Get(ctx, "shardId-404"); !errors.Is(err, lease.ErrNotFound) {
		return failf("Renew of a missing lease created it (Get: %v)", err)
	}
	return unchanged(ctx, s, want, "failed renewals")
}

func checkTakeFencing(ctx context.Context, s lease.Store) error {
	l, err := create(ctx, s, unowned("a"))
	if err != nil {
		return err
	}
	tk, err := s.Take(ctx, l, "w1")
	if err != nil {
		return failf("Take of an unowned lease: %w", err)
	}
	// As in the Java KCL, taking an unowned lease is no owner switch.
	want := unowned("a")
	want.Owner, want.Counter = "w1", 1
	if err := wantLease(tk, want, "Take's result"); err != nil {
		return err
	}
	_, err = s.Take(ctx, l, "w2")
	if err := wantErr(err, lease.ErrConflict, "Take with the counter before the last write"); err != nil {
		return err
	}
	if err := unchanged(ctx, s, want, "a Take with a stale counter"); err != nil {
		return err
	}
	again, err := s.Take(ctx, tk, "w1")
	if err != nil {
		return failf("Take by the owner: %w", err)
	}
	want.Counter = 2
	if err := wantLease(again, want, "Take by the owner (no owner switch)"); err != nil {
		return err
	}
	st, err := s.Take(ctx, again, "w2") // a steal: whoever owns it
	if err != nil {
		return failf("Take of a lease owned by another: %w", err)
	}
	want.Owner, want.Counter, want.OwnerSwitchesSinceCheckpoint = "w2", 3, 1
	if err := wantLease(st, want, "steal"); err != nil {
		return err
	}
	if _, err := s.Take(ctx, st, ""); err == nil {
		return failf("Take with an empty owner succeeded")
	}
	_, err = s.Take(ctx, lease.Lease{Key: "shardId-404"}, "w1")
	if err := wantErr(err, lease.ErrConflict, "Take of a missing lease"); err != nil {
		return err
	}
	return unchanged(ctx, s, want, "failed takes")
}

func checkRelease(ctx context.Context, s lease.Store) error {
	l, err := create(ctx, s, full())
	if err != nil {
		return err
	}
	stale := l
	_, err = s.Release(ctx, lease.Lease{Key: l.Key, Owner: "w2", Counter: l.Counter})
	if err := wantErr(err, lease.ErrConflict, "Release by another owner"); err != nil {
		return err
	}
	r, err := s.Renew(ctx, l)
	if err != nil {
		return failf("Renew: %w", err)
	}
	_, err = s.Release(ctx, stale)
	if err := wantErr(err, lease.ErrConflict, "Release with the counter before the last write"); err != nil {
		return err
	}
	if err := unchanged(ctx, s, r, "failed releases"); err != nil {
		return err
	}
	rl, err := s.Release(ctx, r)
	if err != nil {
		return failf("Release: %w", err)
	}
	want := r
	want.Owner, want.Counter = "", r.Counter+1
	if err := wantLease(rl, want, "Release's result"); err != nil {
		return err
	}
	if err := unchanged(ctx, s, want, "Release"); err != nil {
		return failf("Release did not store what it returned: %w", err)
	}
	// Renewing an unowned lease expects an empty Owner.
	rn, err := s.Renew(ctx, rl)
	if err != nil {
		return failf("Renew of an unowned lease: %w", err)
	}
	if rn.Owner != "" || rn.Counter != rl.Counter+1 {
		return failf("Renew of an unowned lease: owner %q counter %d, want none and %d", rn.Owner, rn.Counter, rl.Counter+1)
	}
	return nil
}

func checkCheckpoint(ctx context.Context, s lease.Store) error {
	l, err := create(ctx, s, full())
	if err != nil {
		return err
	}
	next := l.Clone()
	next.Checkpoint, next.CheckpointSubSequence = seq3, 0
	next.PendingCheckpoint, next.PendingCheckpointSubSequence = "", 0
	next.OwnerSwitchesSinceCheckpoint = 0
	next.ChildShardIDs = []string{"shardId-000000000009", "shardId-000000000008"}
	next.ParentShardIDs = nil // not a progress field: must not be written
	next.StartingHashKey = "1"
	cp, err := s.Checkpoint(ctx, next)
	if err != nil {
		return failf("Checkpoint: %w", err)
	}
	want := full()
	want.Counter++
	want.Checkpoint, want.CheckpointSubSequence = seq3, 0
	want.PendingCheckpoint, want.PendingCheckpointSubSequence = "", 0
	want.OwnerSwitchesSinceCheckpoint = 0
	want.ChildShardIDs = []string{"shardId-000000000008", "shardId-000000000009"} // a set: read back in order
	delete(want.Extra, "pendingCheckpointState")                                  // goes with the pending checkpoint
	if err := wantLease(cp, want, "Checkpoint's result (progress fields written, others not)"); err != nil {
		return err
	}
	if err := unchanged(ctx, s, want, "Checkpoint"); err != nil {
		return failf("Checkpoint did not store what it returned: %w", err)
	}
	_, err = s.Checkpoint(ctx, next)
	if err := wantErr(err, lease.ErrConflict, "Checkpoint with the counter before the last write"); err != nil {
		return err
	}
	stranger := cp
	stranger.Owner = "w9"
	_, err = s.Checkpoint(ctx, stranger)
	if err := wantErr(err, lease.ErrConflict, "Checkpoint by another owner"); err != nil {
		return err
	}
	if err := unchanged(ctx, s, want, "failed checkpoints"); err != nil {
		return err
	}
	pend := cp
	pend.PendingCheckpoint, pend.PendingCheckpointSubSequence = string(checkpoint.ShardEnd), 4
	p, err := s.Checkpoint(ctx, pend)
	if err != nil {
		return failf("Checkpoint preparing a pending checkpoint: %w", err)
	}
	want.Counter++
	want.PendingCheckpoint, want.PendingCheckpointSubSequence = string(checkpoint.ShardEnd), 4
	return wantLease(p, want, "Checkpoint preparing a pending checkpoint")
}

// checkLatestTimestamp: the time a LATEST checkpoint stands for is kept by
// Create, written by Take when given, kept by a checkpoint that stays
// LATEST and dropped by any other.
func checkLatestTimestamp(ctx context.Context, s lease.Store) error {
	at := time.UnixMilli(1_700_000_000_123)
	l := unowned("pinned")
	l.Checkpoint, l.LatestTimestamp = string(checkpoint.Latest), at
	made, err := create(ctx, s, l)
	if err != nil {
		return err
	}
	if !made.LatestTimestamp.Equal(at) {
		return failf("Create's result: LatestTimestamp %v, want %v", made.LatestTimestamp, at)
	}
	got, err := s.Get(ctx, l.Key)
	if err != nil {
		return failf("Get: %w", err)
	}
	if !got.LatestTimestamp.Equal(at) {
		return failf("Get after Create: LatestTimestamp %v, want %v", got.LatestTimestamp, at)
	}
	bare, err := create(ctx, s, lease.Lease{Key: "bare", Checkpoint: string(checkpoint.Latest)})
	if err != nil {
		return err
	}
	bare.LatestTimestamp = at.Add(time.Second)
	taken, err := s.Take(ctx, bare, "w1")
	if err != nil {
		return failf("Take: %w", err)
	}
	if got, err := s.Get(ctx, bare.Key); err != nil || !got.LatestTimestamp.Equal(bare.LatestTimestamp) || !taken.LatestTimestamp.Equal(bare.LatestTimestamp) {
		return failf("Take with a LatestTimestamp: stored %v (%v), returned %v, want %v", got.LatestTimestamp, err, taken.LatestTimestamp, bare.LatestTimestamp)
	}
	same := taken
	same.OwnerSwitchesSinceCheckpoint = 0
	kept, err := s.Checkpoint(ctx, same)
	if err != nil {
		return failf("Checkpoint at LATEST: %w", err)
	}
	if !kept.LatestTimestamp.Equal(bare.LatestTimestamp) {
		return failf("Checkpoint that stays LATEST: LatestTimestamp %v, want %v kept", kept.LatestTimestamp, bare.LatestTimestamp)
	}
	moved := kept
	moved.Checkpoint = seq1
	done, err := s.Checkpoint(ctx, moved)
	if err != nil {
		return failf("Checkpoint at a sequence number: %w", err)
	}
	got, err = s.Get(ctx, bare.Key)
	if err != nil {
		return failf("Get: %w", err)
	}
	if !done.LatestTimestamp.IsZero() || !got.LatestTimestamp.IsZero() {
		return failf("Checkpoint past LATEST: LatestTimestamp returned %v, stored %v, want none", done.LatestTimestamp, got.LatestTimestamp)
	}
	return nil
}

// checkHandOver: HandOver names the next owner and keeps the holder as
// CheckpointOwner, fenced like every write; the holder's Release then
// removes CheckpointOwner, leaving the lease to the next owner; a Take ends
// a hand-over.
func checkHandOver(ctx context.Context, s lease.Store) error {
	l, err := create(ctx, s, lease.Lease{Key: "moving", Owner: "w1", Counter: 3, Checkpoint: seq1})
	if err != nil {
		return err
	}
	stale := l
	stale.Counter--
	_, err = s.HandOver(ctx, stale, "w2")
	if err := wantErr(err, lease.ErrConflict, "HandOver with a stale counter"); err != nil {
		return err
	}
	other := l
	other.Owner = "w9"
	_, err = s.HandOver(ctx, other, "w2")
	if err := wantErr(err, lease.ErrConflict, "HandOver naming another owner"); err != nil {
		return err
	}
	h, err := s.HandOver(ctx, l, "w2")
	if err != nil {
		return failf("HandOver: %w", err)
	}
	want := l
	want.Owner, want.CheckpointOwner, want.Counter, want.OwnerSwitchesSinceCheckpoint = "w2", "w1", l.Counter+1, l.OwnerSwitchesSinceCheckpoint+1
	if err := wantLease(h, want, "HandOver's result"); err != nil {
		return err
	}
	if err := unchanged(ctx, s, want, "HandOver"); err != nil {
		return failf("HandOver did not store what it returned: %w", err)
	}
	fresh := h
	fresh.CheckpointOwner = ""
	_, err = s.HandOver(ctx, fresh, "w3")
	if err := wantErr(err, lease.ErrConflict, "HandOver starting a hand-over during one"); err != nil {
		return err
	}
	if _, err := s.HandOver(ctx, h, "w1"); err == nil {
		return failf("HandOver redirecting a hand-over to its own holder: no error")
	}
	if err := unchanged(ctx, s, want, "HandOver redirecting to the holder"); err != nil {
		return err
	}
	// Redirected: the holder still finishes, for another next owner.
	r, err := s.HandOver(ctx, h, "w3")
	if err != nil {
		return failf("HandOver redirecting a hand-over: %w", err)
	}
	want.Owner, want.Counter = "w3", h.Counter+1
	if err := wantLease(r, want, "HandOver redirecting a hand-over"); err != nil {
		return err
	}
	// The holder checkpoints, then hands the lease over.
	cp := r
	cp.Checkpoint = seq2
	cp, err = s.Checkpoint(ctx, cp)
	if err != nil {
		return failf("Checkpoint during a hand-over: %w", err)
	}
	wrong := cp
	wrong.CheckpointOwner = "w9"
	_, err = s.Release(ctx, wrong)
	if err := wantErr(err, lease.ErrConflict, "Release of a hand-over by another checkpoint owner"); err != nil {
		return err
	}
	done, err := s.Release(ctx, cp)
	if err != nil {
		return failf("Release ending a hand-over: %w", err)
	}
	want = cp
	want.CheckpointOwner, want.Counter = "", cp.Counter+1
	if err := wantLease(done, want, "Release ending a hand-over (the lease is the next owner's)"); err != nil {
		return err
	}
	// A take ends a hand-over that was not finished.
	again, err := s.HandOver(ctx, done, "w4")
	if err != nil {
		return failf("second HandOver: %w", err)
	}
	taken, err := s.Take(ctx, again, "w3")
	if err != nil {
		return failf("Take during a hand-over: %w", err)
	}
	if taken.CheckpointOwner != "" || taken.Owner != "w3" {
		return failf("Take during a hand-over: owner %q checkpoint owner %q, want w3 and none", taken.Owner, taken.CheckpointOwner)
	}
	return nil
}

// checkThroughput: Renew writes the measured throughput when known, and
// keeps the last one otherwise.
func checkThroughput(ctx context.Context, s lease.Store) error {
	l, err := create(ctx, s, lease.Lease{Key: "busy", Owner: "w1", Checkpoint: seq1})
	if err != nil {
		return err
	}
	l.ThroughputKBps, l.ThroughputKnown = 123.5, true
	r, err := s.Renew(ctx, l)
	if err != nil {
		return failf("Renew with a throughput: %w", err)
	}
	if got, err := s.Get(ctx, l.Key); err != nil || got.ThroughputKBps != 123.5 || !got.ThroughputKnown || r.ThroughputKBps != 123.5 {
		return failf("Renew with a throughput: stored %v (known %v, %v), returned %v; want 123.5", got.ThroughputKBps, got.ThroughputKnown, err, r.ThroughputKBps)
	}
	r.ThroughputKBps, r.ThroughputKnown = 0, false
	if _, err := s.Renew(ctx, r); err != nil {
		return failf("Renew without a throughput: %w", err)
	}
	if got, err := s.Get(ctx, l.Key); err != nil || got.ThroughputKBps != 123.5 || !got.ThroughputKnown {
		return failf("Renew without a throughput: stored %v (known %v, %v), want 123.5 kept", got.ThroughputKBps, got.ThroughputKnown, err)
	}
	return nil
}

func checkDelete(ctx context.Context, s lease.Store) error {
	l, err := create(ctx, s, full())
	if err != nil {
		return err
	}
	stale := l
	stale.Counter--
	if err := wantErr(s.Delete(ctx, stale), lease.ErrConflict, "Delete with a stale counter"); err != nil {
		return err
	}
	if err := unchanged(ctx, s, l, "a failed Delete"); err != nil {
		return err
	}
	if err := s.Delete(ctx, l); err != nil {
		return failf("Delete: %w", err)
	}
	if _, err := s.Get(ctx, l.Key); !errors.Is(err, lease.ErrNotFound) {
		return failf("Get after Delete: got %v, want lease.ErrNotFound", err)
	}
	if err := wantErr(s.Delete(ctx, l), lease.ErrConflict, "second Delete"); err != nil {
		return err
	}
	if ls, err := s.List(ctx); err != nil || len(ls) != 0 {
		return failf("List after Delete: %v, %v", keys(ls), err)
	}
	return nil
}

func checkUnknownAttributesKept(ctx context.Context, s lease.Store) error {
	l := unowned("a")
	l.Extra = extra()
	l, err := create(ctx, s, l)
	if err != nil {
		return err
	}
	check := func(got lease.Lease, after string, want map[string]types.AttributeValue) error {
		if !reflect.DeepEqual(got.Extra, want) {
			return failf("unknown attributes after %s: %s, want %s", after, describe(lease.Lease{Extra: got.Extra}), describe(lease.Lease{Extra: want}))
		}
		stored, err := s.Get(ctx, got.Key)
		if err != nil {
			return failf("Get after %s: %w", after, err)
		}
		if !reflect.DeepEqual(stored.Extra, want) {
			return failf("stored unknown attributes after %s: %s, want %s", after, describe(lease.Lease{Extra: stored.Extra}), describe(lease.Lease{Extra: want}))
		}
		return nil
	}
	if err := check(l, "Create", extra()); err != nil {
		return err
	}
	if l, err = s.Take(ctx, l, "w1"); err != nil {
		return failf("Take: %w", err)
	}
	if err := check(l, "Take", extra()); err != nil {
		return err
	}
	if l, err = s.Renew(ctx, l); err != nil {
		return failf("Renew: %w", err)
	}
	if err := check(l, "Renew", extra()); err != nil {
		return err
	}
	l.PendingCheckpoint = seq2
	if l, err = s.Checkpoint(ctx, l); err != nil {
		return failf("Checkpoint: %w", err)
	}
	if err := check(l, "Checkpoint keeping a pending checkpoint", extra()); err != nil {
		return err
	}
	if l, err = s.Release(ctx, l); err != nil {
		return failf("Release: %w", err)
	}
	if err := check(l, "Release", extra()); err != nil {
		return err
	}
	ls, err := s.List(ctx)
	if err != nil || len(ls) != 1 {
		return failf("List: %v, %v", keys(ls), err)
	}
	return check(ls[0], "List", extra())
}

func checkReturnsCopies(ctx context.Context, s lease.Store) error {
	in := full()
	created, err := create(ctx, s, in)
	if err != nil {
		return err
	}
	scribble := func(l *lease.Lease) {
		if len(l.ParentShardIDs) > 0 {
			l.ParentShardIDs[0] = "scribbled"
		}
		if len(l.ChildShardIDs) > 0 {
			l.ChildShardIDs[0] = "scribbled"
		}
		if l.Extra != nil {
			l.Extra["scribbled"] = &types.AttributeValueMemberS{Value: "x"}
		}
	}
	scribble(&in)
	scribble(&created)
	if err := unchanged(ctx, s, full(), "changing the lease given to and returned by Create"); err != nil {
		return err
	}
	got, err := s.Get(ctx, full().Key)
	if err != nil {
		return failf("Get: %w", err)
	}
	scribble(&got)
	ls, err := s.List(ctx)
	if err != nil || len(ls) != 1 {
		return failf("List: %v, %v", keys(ls), err)
	}
	scribble(&ls[0])
	if err := unchanged(ctx, s, full(), "changing the leases returned by Get and List"); err != nil {
		return err
	}
	cur := full()
	r, err := s.Renew(ctx, cur)
	if err != nil {
		return failf("Renew: %w", err)
	}
	scribble(&cur)
	scribble(&r)
	want := full()
	want.Counter++
	return unchanged(ctx, s, want, "changing the lease given to and returned by Renew")
}

func checkConcurrentTakes(ctx context.Context, s lease.Store) error {
	l, err := create(ctx, s, unowned("race"))
	if err != nil {
		return err
	}
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() { _, err := s.Take(ctx, l, fmt.Sprintf("w%d", i)); errs <- err }()
	}
	wins := 0
	var others []error
	for range n {
		err := <-errs
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, lease.ErrConflict):
			others = append(others, err)
		}
	}
	if len(others) > 0 {
		return failf("concurrent takes failed otherwise than with lease.ErrConflict: %w", errors.Join(others...))
	}
	if wins != 1 {
		return failf("%d of %d concurrent takes on one counter succeeded, want 1", wins, n)
	}
	got, err := s.Get(ctx, "race")
	if err != nil {
		return failf("Get: %w", err)
	}
	if got.Counter != 1 {
		return failf("counter %d after one successful take, want 1", got.Counter)
	}
	return nil
}

// checkConcurrentRenewals has writers renew one lease concurrently, each
// re-reading it after a failed condition: every successful write must
// move the counter by exactly one and return a counter no other write
// returned.
func checkConcurrentRenewals(ctx context.Context, s lease.Store) error {
	l := unowned("busy")
	l.Owner = "w1"
	if _, err := create(ctx, s, l); err != nil {
		return err
	}
	const writers, writes = 4, 10
	var (
		mu       sync.Mutex
		counters = map[int64]int{}
		wg       sync.WaitGroup
		errs     = make(chan error, writers)
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cur, err := s.Get(ctx, "busy")
			for done := 0; done < writes && err == nil; {
				var r lease.Lease
				r, err = s.Renew(ctx, cur)
				switch {
				case err == nil:
					mu.Lock()
					counters[r.Counter]++
					mu.Unlock()
					cur = r
					done++
				case errors.Is(err, lease.ErrConflict):
					cur, err = s.Get(ctx, "busy")
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return failf("concurrent renewals: %w", err)
		}
	}
	got, err := s.Get(ctx, "busy")
	if err != nil {
		return failf("Get: %w", err)
	}
	if got.Counter != writers*writes {
		return failf("counter %d after %d successful renewals from 0: writes were lost or doubled", got.Counter, writers*writes)
	}
	for c, n := range counters {
		if n != 1 || c < 1 || c > writers*writes {
			return failf("%d renewals returned counter %d: each counter must be returned by one write", n, c)
		}
	}
	return nil
}

func keys(ls []lease.Lease) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Key
	}
	return out
}
