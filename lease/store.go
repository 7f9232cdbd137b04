package lease

import "context"

// Store reads and writes a lease table. Every update is conditional on the
// lease's Counter matching the one in the table (and, where noted, its
// Owner), increments the counter, and returns the lease as stored after the
// write. A failed condition is reported as ErrConflict, also when the lease
// no longer exists. Attributes a store does not manage (Lease.Extra) are
// kept on every update. Leases passed in and returned are the caller's: a
// store keeps no reference to their slices and maps. The methods are safe
// for concurrent use. A store makes each call once: the coordinator and the
// shard syncer retry what failed.
//
// DynamoDBStore and MemoryStore implement it with the same semantics;
// package lease/leasetest checks an implementation against this contract,
// and both pass it.
type Store interface {
	// EnsureTable creates the lease table if it does not exist and waits
	// until it is ready.
	EnsureTable(ctx context.Context) error
	// List returns every well-formed lease of the table, read
	// consistently, ordered by key. Malformed items are logged, counted
	// and skipped.
	List(ctx context.Context) ([]Lease, error)
	// Get returns one lease, read consistently, or ErrNotFound.
	Get(ctx context.Context, key string) (Lease, error)
	// Create writes l if no lease with its key exists, else fails with
	// ErrExists. Owner and Counter are written as given.
	Create(ctx context.Context, l Lease) (Lease, error)
	// Renew increments the counter, if Counter and Owner are as in l, and
	// writes ThroughputKBps when ThroughputKnown.
	Renew(ctx context.Context, l Lease) (Lease, error)
	// Take makes owner the owner, if Counter is as in l (whoever owns it).
	// OwnerSwitchesSinceCheckpoint grows by one when the lease had another
	// owner (not when it was unowned), as the Java KCL counts it. A
	// LatestTimestamp set in l is written too (the coordinator sets it
	// when it takes a LATEST lease that has none). CheckpointOwner is
	// removed: a take ends a hand-over.
	Take(ctx context.Context, l Lease, owner string) (Lease, error)
	// Release removes the owner, if Counter and Owner are as in l. For a
	// lease being handed over (l.CheckpointOwner set) it removes
	// CheckpointOwner instead, if Counter, Owner and CheckpointOwner are as
	// in l: the lease is then the next owner's.
	Release(ctx context.Context, l Lease) (Lease, error)
	// HandOver starts the hand-over of l to next: Owner becomes next and
	// CheckpointOwner the current owner, if Counter and Owner are as in l
	// and no hand-over is in progress. OwnerSwitchesSinceCheckpoint grows
	// by one. For l in a hand-over (l.CheckpointOwner set) it redirects it:
	// Owner becomes next, if Counter, Owner and CheckpointOwner are as in
	// l. Take ends a hand-over (it removes CheckpointOwner).
	HandOver(ctx context.Context, l Lease, next string) (Lease, error)
	// Checkpoint writes the progress fields of l (Checkpoint,
	// CheckpointSubSequence, PendingCheckpoint,
	// PendingCheckpointSubSequence, OwnerSwitchesSinceCheckpoint,
	// ChildShardIDs, and LatestTimestamp while the checkpoint is LATEST),
	// if Counter and Owner are as in l. An empty
	// PendingCheckpoint also removes the Java KCL's pendingCheckpointState
	// attribute (kept in Extra), which goes with it.
	Checkpoint(ctx context.Context, l Lease) (Lease, error)
	// Delete removes the lease, if Counter is as in l.
	Delete(ctx context.Context, l Lease) error

	// The coordinator state and worker metrics tables (see FleetStore);
	// EnsureTable creates them too.
	FleetStore
}
