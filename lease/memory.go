package lease

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// MemoryStore is a Store kept in memory, with the same semantics as
// DynamoDBStore. It is meant for tests. The zero value is not usable: call
// NewMemoryStore.
type MemoryStore struct {
	mu     sync.Mutex
	leases map[string]Lease
	fleet  *memFleet // coordinator state and worker metrics; nil until used
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{leases: make(map[string]Lease)}
}

var _ Store = (*MemoryStore)(nil)

// EnsureTable does nothing: the table always exists.
func (s *MemoryStore) EnsureTable(ctx context.Context) error { return ctx.Err() }

// List returns every lease, ordered by key.
func (s *MemoryStore) List(ctx context.Context) ([]Lease, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.leases))
	for k := range s.leases {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([]Lease, len(keys))
	for i, k := range keys {
		out[i] = s.leases[k].Clone()
	}
	return out, nil
}

// Get returns the lease with the given key.
func (s *MemoryStore) Get(ctx context.Context, key string) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[key]
	if !ok {
		return Lease{}, fmt.Errorf("get lease %q: %w", key, ErrNotFound)
	}
	return l.Clone(), nil
}

// Create stores l if its key is free.
func (s *MemoryStore) Create(ctx context.Context, l Lease) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	if l.Key == "" {
		return Lease{}, fmt.Errorf("create lease: empty key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.leases[l.Key]; ok {
		return Lease{}, fmt.Errorf("create lease %q: %w", l.Key, ErrExists)
	}
	l = l.Clone()
	l.LatestTimestamp = toMillis(l.LatestTimestamp)
	slices.Sort(l.ParentShardIDs) // stored as string sets, as in DynamoDB
	slices.Sort(l.ChildShardIDs)
	s.leases[l.Key] = l
	return l.Clone(), nil
}

// update applies fn to the stored lease if the condition holds.
func (s *MemoryStore) update(ctx context.Context, op string, l Lease, checkOwner bool, fn func(*Lease)) (Lease, error) {
	return s.write(ctx, op, l, checkOwner, nil, fn)
}

// updateIf is update with the owner checked, and cond too.
func (s *MemoryStore) updateIf(ctx context.Context, op string, l Lease, cond func(*Lease) bool, fn func(*Lease)) (Lease, error) {
	return s.write(ctx, op, l, true, cond, fn)
}

func (s *MemoryStore) write(ctx context.Context, op string, l Lease, checkOwner bool, cond func(*Lease) bool, fn func(*Lease)) (Lease, error) {
	if err := ctx.Err(); err != nil {
		return Lease{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[l.Key]
	if !ok || cur.Counter != l.Counter || (checkOwner && cur.Owner != l.Owner) || (cond != nil && !cond(&cur)) {
		return Lease{}, fmt.Errorf("%s lease %q: %w", op, l.Key, ErrConflict)
	}
	cur = cur.Clone()
	fn(&cur)
	cur.Counter++
	s.leases[l.Key] = cur
	return cur.Clone(), nil
}

// Renew increments the counter if Counter and Owner match, and writes the
// measured throughput.
func (s *MemoryStore) Renew(ctx context.Context, l Lease) (Lease, error) {
	return s.update(ctx, "renew", l, true, func(cur *Lease) {
		if l.ThroughputKnown {
			cur.ThroughputKBps, cur.ThroughputKnown = l.ThroughputKBps, true
		}
	})
}

// Take sets the owner if Counter matches.
func (s *MemoryStore) Take(ctx context.Context, l Lease, owner string) (Lease, error) {
	if owner == "" {
		return Lease{}, fmt.Errorf("take lease %q: empty owner", l.Key)
	}
	return s.update(ctx, "take", l, false, func(cur *Lease) {
		if cur.Owner != "" && cur.Owner != owner {
			cur.OwnerSwitchesSinceCheckpoint++
		}
		cur.Owner = owner
		cur.CheckpointOwner = ""
		if !l.LatestTimestamp.IsZero() {
			cur.LatestTimestamp = toMillis(l.LatestTimestamp)
		}
	})
}

// Release removes the owner if Counter and Owner match, or, for a lease
// being handed over, CheckpointOwner if it matches too.
func (s *MemoryStore) Release(ctx context.Context, l Lease) (Lease, error) {
	if l.CheckpointOwner != "" {
		return s.updateIf(ctx, "release", l, func(cur *Lease) bool { return cur.CheckpointOwner == l.CheckpointOwner },
			func(cur *Lease) { cur.CheckpointOwner = "" })
	}
	return s.update(ctx, "release", l, true, func(cur *Lease) { cur.Owner = "" })
}

// HandOver names next as the owner and the current owner as
// CheckpointOwner, if Counter and Owner match and no hand-over is in
// progress; or redirects the hand-over in progress of l to next.
func (s *MemoryStore) HandOver(ctx context.Context, l Lease, next string) (Lease, error) {
	if next == "" || l.Owner == "" || next == l.Owner || next == l.CheckpointOwner {
		return Lease{}, fmt.Errorf("hand over lease %q from %q to %q: need two different owners", l.Key, l.Owner, next)
	}
	if l.CheckpointOwner != "" { // redirect a hand-over in progress
		return s.updateIf(ctx, "hand over", l, func(cur *Lease) bool { return cur.CheckpointOwner == l.CheckpointOwner },
			func(cur *Lease) { cur.Owner = next })
	}
	return s.updateIf(ctx, "hand over", l, func(cur *Lease) bool { return cur.CheckpointOwner == "" }, func(cur *Lease) {
		cur.CheckpointOwner = cur.Owner
		cur.Owner = next
		cur.OwnerSwitchesSinceCheckpoint++
	})
}

// Checkpoint writes the progress fields if Counter and Owner match.
func (s *MemoryStore) Checkpoint(ctx context.Context, l Lease) (Lease, error) {
	return s.update(ctx, "checkpoint", l, true, func(cur *Lease) {
		cur.Checkpoint = l.Checkpoint
		cur.CheckpointSubSequence = l.CheckpointSubSequence
		cur.PendingCheckpoint = l.PendingCheckpoint
		cur.PendingCheckpointSubSequence = l.PendingCheckpointSubSequence
		if l.PendingCheckpoint == "" {
			cur.PendingCheckpointSubSequence = 0
			delete(cur.Extra, attrPendingCheckpointStat)
		}
		cur.OwnerSwitchesSinceCheckpoint = l.OwnerSwitchesSinceCheckpoint
		cur.ChildShardIDs = slices.Clone(l.ChildShardIDs)
		slices.Sort(cur.ChildShardIDs)
		cur.LatestTimestamp = time.Time{}
		if l.pinsLatest() {
			cur.LatestTimestamp = toMillis(l.LatestTimestamp)
		}
	})
}

// Delete removes the lease if Counter matches.
func (s *MemoryStore) Delete(ctx context.Context, l Lease) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.leases[l.Key]
	if !ok || cur.Counter != l.Counter {
		return fmt.Errorf("delete lease %q: %w", l.Key, ErrConflict)
	}
	delete(s.leases, l.Key)
	return nil
}

// memFleet is the coordinator state and worker metrics of a MemoryStore.
type memFleet struct {
	leader  LeaderState
	workers map[string]WorkerState
}

func (s *MemoryStore) fleetLocked() *memFleet {
	if s.fleet == nil {
		s.fleet = &memFleet{workers: make(map[string]WorkerState)}
	}
	return s.fleet
}

func cloneLeader(l LeaderState) LeaderState {
	l.Notices = maps.Clone(l.Notices)
	l.Live = slices.Clone(l.Live)
	return l
}

// Leader returns the leader item.
func (s *MemoryStore) Leader(ctx context.Context) (LeaderState, error) {
	if err := ctx.Err(); err != nil {
		return LeaderState{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneLeader(s.fleetLocked().leader), nil
}

// AcquireLeader makes owner the leader if the counter is prev.Counter.
func (s *MemoryStore) AcquireLeader(ctx context.Context, prev LeaderState, owner string) (LeaderState, error) {
	if err := ctx.Err(); err != nil {
		return LeaderState{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fleetLocked()
	if f.leader.Counter != prev.Counter {
		return LeaderState{}, fmt.Errorf("acquire leader: %w", ErrConflict)
	}
	f.leader.Owner = owner
	f.leader.Counter++
	return cloneLeader(f.leader), nil
}

// RenewLeader renews the leader item and adds the notices.
func (s *MemoryStore) RenewLeader(ctx context.Context, l LeaderState, notify []string) (LeaderState, error) {
	if err := ctx.Err(); err != nil {
		return LeaderState{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fleetLocked()
	if f.leader.Counter != l.Counter || f.leader.Owner != l.Owner || l.Owner == "" {
		return LeaderState{}, fmt.Errorf("renew leader: %w", ErrConflict)
	}
	f.leader.Counter++
	f.leader.Live = slices.Clone(l.Live)
	f.addNotices(notify)
	return cloneLeader(f.leader), nil
}

func (f *memFleet) addNotices(workers []string) {
	if len(workers) > 0 && f.leader.Notices == nil {
		f.leader.Notices = make(map[string]int64)
	}
	for _, w := range workers {
		f.leader.Notices[w]++
	}
}

// ReleaseLeader removes the leader's owner.
func (s *MemoryStore) ReleaseLeader(ctx context.Context, l LeaderState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fleetLocked()
	if f.leader.Counter != l.Counter || f.leader.Owner != l.Owner {
		return fmt.Errorf("release leader: %w", ErrConflict)
	}
	f.leader.Owner = ""
	f.leader.Counter++
	return nil
}

// Notify adds the notices and the request.
func (s *MemoryStore) Notify(ctx context.Context, workers []string, request bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fleetLocked()
	f.addNotices(workers)
	if request {
		f.leader.Requests++
	}
	return nil
}

// Heartbeat writes the worker's item.
func (s *MemoryStore) Heartbeat(ctx context.Context, w WorkerState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.fleetLocked()
	w.Heartbeat = f.workers[w.ID].Heartbeat + 1
	f.workers[w.ID] = w
	return nil
}

// RemoveWorker deletes the worker's item.
func (s *MemoryStore) RemoveWorker(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.fleetLocked().workers, id)
	return nil
}

// Workers returns every worker's item, by ID.
func (s *MemoryStore) Workers(ctx context.Context) ([]WorkerState, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := slices.Collect(maps.Values(s.fleetLocked().workers))
	slices.SortFunc(ws, func(a, b WorkerState) int { return strings.Compare(a.ID, b.ID) })
	return ws, nil
}

// Owned returns the keys of owner's leases, sorted.
func (s *MemoryStore) Owned(ctx context.Context, owner string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k, l := range s.leases {
		if l.Owner == owner {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys, nil
}
