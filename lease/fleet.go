package lease

import (
	"context"
	"time"
)

// Coordination beyond the lease table.
//
// One worker of the fleet is the leader. It holds the leader item of the
// coordinator state table (<table>-CoordinatorState) as a lease of its own:
// every write to it is conditional on its counter and increments it, and
// the other workers judge it expired when they see the counter unchanged
// for half a FailoverTime, by their own clocks. The leader reads the
// workers' heartbeats (<table>-WorkerMetricStats), scans the lease table,
// and assigns leases; a worker reads the leader item every TakeInterval and
// learns there that leases were assigned to it (its notice count moved),
// then looks them up through the index on leaseOwner
// (LeaseOwnerToLeaseKeyIndex). See docs/design.md ("Lease protocol").

// LeaderState is the leader item of the coordinator state table.
type LeaderState struct {
	// Owner is the worker that leads; empty when nobody does (released).
	Owner string
	// Counter is the item's fencing counter; 0 when the item does not
	// exist yet.
	Counter int64
	// Notices counts, per worker, the ownership changes made for it
	// (leases assigned or handed over to it): a worker that sees its count
	// move looks up the leases it owns.
	Notices map[string]int64
	// Requests counts the requests for an assignment pass (a lease
	// released, child leases created).
	Requests int64
	// Live are the workers the leader judges alive and not leaving, as of
	// its last renewal: a worker shutting down hands its leases to them.
	Live []string
}

// WorkerState is a worker's item in the worker metrics table: its
// heartbeat and load.
type WorkerState struct {
	// ID is the worker's WorkerID.
	ID string
	// Heartbeat grows by one at every heartbeat; the leader judges a
	// worker dead when it sees it unchanged for FailoverTime.
	Heartbeat int64
	// Leases is how many leases the worker held at the heartbeat.
	Leases int
	// ThroughputKBps is the sum of the measured read rates of its leases.
	ThroughputKBps float64
	// MaxLeases is the worker's MaxLeasesForWorker (0: no cap).
	MaxLeases int
	// Leaving is set by a worker shutting down: it takes no more leases.
	Leaving bool
	// Updated is the worker's clock at the heartbeat, for operators only:
	// no decision compares it with another clock.
	Updated time.Time
}

// FleetStore is the part of Store that coordinates the fleet: the leader
// item of the coordinator state table, the worker metrics table and the
// index on leaseOwner. DynamoDBStore and MemoryStore implement it.
type FleetStore interface {
	// Leader reads the leader item, consistently. A missing item is
	// returned as LeaderState{} and no error.
	Leader(ctx context.Context) (LeaderState, error)
	// AcquireLeader makes owner the leader, if the item's counter is
	// prev.Counter (prev.Counter 0: the item does not exist).
	AcquireLeader(ctx context.Context, prev LeaderState, owner string) (LeaderState, error)
	// RenewLeader renews the leader item, if its Counter and Owner are
	// as in s, writes s.Live, and adds one to the notice count of each
	// worker in notify;
	// it returns the item as written (notices and requests made by
	// others included).
	RenewLeader(ctx context.Context, s LeaderState, notify []string) (LeaderState, error)
	// ReleaseLeader removes the owner of the leader item, if its Counter
	// and Owner are as in s, so that another worker leads at once.
	ReleaseLeader(ctx context.Context, s LeaderState) error
	// Notify adds one to the notice count of each worker given, and to
	// the request count when request is set. It needs no condition: it
	// does not touch the leader's counter.
	Notify(ctx context.Context, workers []string, request bool) error
	// Heartbeat writes w to the worker metrics table, Heartbeat growing
	// by one (w.Heartbeat is ignored).
	Heartbeat(ctx context.Context, w WorkerState) error
	// RemoveWorker deletes a worker's item from the worker metrics table.
	RemoveWorker(ctx context.Context, id string) error
	// Workers reads the worker metrics table (eventually consistent).
	Workers(ctx context.Context) ([]WorkerState, error)
	// Owned returns the keys of the leases owner owns, through the index
	// on leaseOwner (eventually consistent: a caller reads a lease before
	// acting on it).
	Owned(ctx context.Context, owner string) ([]string, error)
}
