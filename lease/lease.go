// Package lease coordinates which worker processes which shard of a Kinesis
// stream, through a DynamoDB lease table whose schema is compatible with the
// Java KCL 2.x and 3.x: a table written by one can be taken over by the
// other. Package
// kcl builds its workers on it; most applications use kcl and never this
// package directly.
//
// A Lease is one item of the table (one shard). A Store reads and writes the
// table; every write is conditional on the lease counter the writer last saw
// and increments it, so the counter is a fencing token. DynamoDBStore is the
// real store and MemoryStore an in-memory one with the same semantics, for
// tests; package lease/leasetest checks any Store against the contract. A
// Coordinator runs one worker's side of the protocol: it renews the leases
// the worker holds and writes its heartbeat, takes up the leases assigned
// to it, hands leases over when asked, and hands them on at a graceful
// shutdown; one coordinator of the fleet leads (the leader item of the
// coordinator state table): it alone scans the lease table, judges expiry
// from the heartbeats, and assigns free, expired and balancing moves. Only
// the leader reads the whole table, so the fleet's reads grow with leases
// plus workers, not their product. A ShardSyncer creates
// the leases of shards that have none, following the lineage rules of the
// stream, and deletes finished leases. The table, the protocol and the
// lineage rules are described in docs/design.md ("Lease table", "Lease
// protocol", "Shard lineage").
//
// The names are those of packages kcl and kpl: ShardSyncConfig.Stream is the
// stream's name or ARN; ShardSyncConfig.Kinesis and DynamoDBConfig.DynamoDB
// are the Kinesis and DynamoDB clients, and KinesisAPI and DynamoDBAPI the
// interfaces naming the calls made with them; start positions are
// checkpoint.Position values (checkpoint.TrimHorizon, Latest, AtTimestamp,
// and ShardEnd for a finished shard), written to Lease.Checkpoint by name; a
// sub-sequence number is a uint64.
//
// Retries: a Store makes each call once, so that it can be used with the
// SDK's own retries turned off (DynamoDBStore.EnsureTable, made once at
// start-up, retries its own calls). The coordinator and the shard syncer retry
// a call that failed with a retryable error (throttling, a transient fault,
// a timeout) a few times within the pass, with full-jitter backoff, and
// otherwise at their next pass; an error that another attempt would meet
// again (access denied, a missing table, a failed condition) is not
// retried within the pass.
//
// Metrics (Config.Metrics, ShardSyncConfig.Metrics, DynamoDBConfig.Metrics):
//
//	kinesis_lease_held                         gauge, leases this worker holds
//	kinesis_lease_taken_total                  counter, unowned or expired leases taken
//	kinesis_lease_stolen_total                 counter, leases asked of a live worker to balance (hand-overs started)
//	kinesis_lease_handed_over_total            counter, held leases handed over to the worker that asked for them
//	kinesis_lease_hand_over_forced_total       counter, leases handed over to this worker taken without the holder's hand-over
//	kinesis_lease_lost_total                   counter
//	kinesis_lease_duplicate_worker_id_total    counter, held leases lost to another process running with the same WorkerID
//	kinesis_lease_released_total               counter
//	kinesis_lease_renew_seconds                histogram, per renewal call
//	kinesis_lease_store_errors_total{op,kind}  counter; kind: conflict, not_found, malformed, throttled, or the AWS error code, "http_STATUS", "timeout", "canceled", "network"
//	kinesis_lease_taker_passes_total           counter, poll passes (reads or renewals of the leader item)
//	kinesis_lease_table_leases                 gauge, unfinished leases seen at the leader's last scan
//	kinesis_lease_leader                       gauge, 1 while this worker leads
//	kinesis_lease_assigned_total               counter, leases this worker, leading, assigned to another
//	kinesis_lease_heartbeat_errors_total       counter, heartbeats that failed
//	kinesis_lease_created_total                counter, leases the shard syncer created
//	kinesis_lease_deleted_total                counter, finished leases the shard syncer deleted
//	kinesis_lease_malformed_items_total        counter, items DynamoDBStore skipped
package lease

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/kinesisgo/kinesis/checkpoint"
)

// Names of the attributes of a lease item: the Java KCL 2.x schema
// (docs/design.md, "Lease table").
const (
	attrKey                   = "leaseKey"
	attrOwner                 = "leaseOwner"
	attrCounter               = "leaseCounter"
	attrCheckpoint            = "checkpoint"
	attrCheckpointSub         = "checkpointSubSequenceNumber"
	attrPendingCheckpoint     = "pendingCheckpoint"
	attrPendingCheckpointSub  = "pendingCheckpointSubSequenceNumber"
	attrPendingCheckpointStat = "pendingCheckpointState"
	attrOwnerSwitches         = "ownerSwitchesSinceCheckpoint"
	attrParents               = "parentShardId"
	attrChildren              = "childShardIds"
	attrStartingHashKey       = "startingHashKey"
	attrEndingHashKey         = "endingHashKey"
	attrCheckpointOwner       = "checkpointOwner" // the Java KCL 3.x's: the holder finishing a hand-over
	attrThroughput            = "throughputKBps"  // the Java KCL 3.x's: bytes/s read, in KiB, written at renewal
	// attrLatestTimestamp is this package's own: the time a LATEST
	// checkpoint stands for, in Unix milliseconds. The Java KCL ignores it
	// and keeps it (it updates single attributes).
	attrLatestTimestamp = "latestTimestampMillis"
)

// Errors returned by stores and by the coordinator. Match them with
// errors.Is: they are usually wrapped.
var (
	// ErrNotFound: no lease with that key exists.
	ErrNotFound = errors.New("lease: not found")
	// ErrExists: Create found a lease with that key already in the table.
	ErrExists = errors.New("lease: already exists")
	// ErrConflict: a conditional write failed because the lease's counter
	// (or owner) is not what the writer expected, or the lease is gone.
	ErrConflict = errors.New("lease: counter or owner changed")
	// ErrLeaseLost: this worker does not hold the lease (any more): it was
	// taken by another worker, released, deleted, or not renewed in time.
	ErrLeaseLost = errors.New("lease: lost")
	// ErrMalformed: a lease item lacks a required attribute or has one of
	// the wrong type.
	ErrMalformed = errors.New("lease: malformed item")
)

// Lease is one item of the lease table: the lease on one shard.
//
// Zero values stand for absent attributes: an empty Owner is an unowned
// lease, an empty PendingCheckpoint means none is pending, and empty slices
// and strings are not written.
type Lease struct {
	// Key is the leaseKey attribute: the shard ID.
	Key string
	// Owner is the worker that holds the lease; empty when unowned.
	Owner string
	// Counter is the leaseCounter, incremented by every write: the fencing
	// token each conditional write checks.
	Counter int64
	// Checkpoint is the sequence number up to which the shard was
	// processed, or the name of a checkpoint.Position (TRIM_HORIZON,
	// LATEST, AT_TIMESTAMP, SHARD_END). CheckpointSequence returns it
	// typed.
	Checkpoint string
	// CheckpointSubSequence is the sub-sequence number of the checkpoint:
	// the place of a user record inside a KPL aggregated record.
	CheckpointSubSequence uint64
	// PendingCheckpoint is a checkpoint prepared but not yet committed;
	// empty when none.
	PendingCheckpoint string
	// PendingCheckpointSubSequence goes with PendingCheckpoint.
	PendingCheckpointSubSequence uint64
	// OwnerSwitchesSinceCheckpoint counts how often the lease changed hands
	// since the last checkpoint.
	OwnerSwitchesSinceCheckpoint int64
	// ParentShardIDs are the shards this one was split or merged from (two
	// for a merge).
	ParentShardIDs []string
	// ChildShardIDs are the shards this one was split or merged into, once
	// known.
	ChildShardIDs []string
	// StartingHashKey and EndingHashKey are the shard's hash key range, as
	// decimal strings.
	StartingHashKey string
	EndingHashKey   string
	// CheckpointOwner is set while the lease is handed over (the Java KCL
	// 3.x's checkpointOwner): Owner then names the next owner, and
	// CheckpointOwner the holder that finishes its batch, checkpoints, and
	// hands the lease over by releasing it (which removes CheckpointOwner).
	// The next owner takes the lease up then, or, if the holder does not
	// finish, once the lease's counter has not moved for FailoverTime.
	// Empty otherwise.
	CheckpointOwner string
	// ThroughputKBps is the rate the holder reads the shard at, in KiB per
	// second, as it measured it at its last renewal (the Java KCL 3.x's
	// throughputKBps); the balancing plan spreads it over the workers.
	// ThroughputKnown tells whether it was measured (the attribute is
	// present): 0 is a measurement, of an idle shard.
	ThroughputKBps  float64
	ThroughputKnown bool
	// LatestTimestamp is the time a LATEST checkpoint stands for: when the
	// shard syncer created the lease, or when a coordinator first took it
	// if it was created without one (by the Java KCL, say). A worker that
	// takes the lease before its first checkpoint reads from this time
	// instead of from a new LATEST, so that a lease moved before its first
	// record skips nothing written meanwhile. It is meaningful only while
	// Checkpoint is LATEST: stores drop it with any other checkpoint. The
	// attribute is latestTimestampMillis (Unix milliseconds), which the
	// Java KCL ignores.
	LatestTimestamp time.Time
	// Extra holds the attributes this package does not know (those of a
	// newer Java KCL, for one), exactly as read. Stores keep them on every
	// write.
	Extra map[string]types.AttributeValue
}

// Clone returns a deep copy of l (the attribute values in Extra are shared:
// they are never modified).
func (l Lease) Clone() Lease {
	l.ParentShardIDs = slices.Clone(l.ParentShardIDs)
	l.ChildShardIDs = slices.Clone(l.ChildShardIDs)
	l.Extra = maps.Clone(l.Extra)
	return l
}

// pinsLatest reports whether l keeps its LatestTimestamp: it is set and
// the checkpoint is LATEST.
func (l Lease) pinsLatest() bool {
	return !l.LatestTimestamp.IsZero() && l.Checkpoint == string(checkpoint.Latest)
}

// toMillis is t as stores keep it: in whole milliseconds.
func toMillis(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli())
}

// Finished reports whether the lease's shard was processed to its end.
func (l Lease) Finished() bool { return l.Checkpoint == string(checkpoint.ShardEnd) }

// CheckpointSequence returns the lease's checkpoint. An empty checkpoint (a
// lease created without one) reads as TRIM_HORIZON.
func (l Lease) CheckpointSequence() checkpoint.SequenceNumber {
	if l.Checkpoint == "" {
		return checkpoint.TrimHorizon.SequenceNumber()
	}
	return checkpoint.SequenceNumber{Sequence: l.Checkpoint, SubSequence: l.CheckpointSubSequence}
}

// PendingSequence returns the lease's pending checkpoint, if it has one.
func (l Lease) PendingSequence() (checkpoint.SequenceNumber, bool) {
	if l.PendingCheckpoint == "" {
		return checkpoint.SequenceNumber{}, false
	}
	return checkpoint.SequenceNumber{Sequence: l.PendingCheckpoint, SubSequence: l.PendingCheckpointSubSequence}, true
}
