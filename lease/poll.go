package lease

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"
)

// leaderExpiry is the part of FailoverTime after which a leader item whose
// counter has not moved (as this worker saw it) is taken over: half, so
// that a dead leader is replaced within FailoverTime.
const leaderExpiry = 2

// pollState is what the poll loop keeps between passes. Guarded by
// Coordinator.pollMu (the loop and ReleaseAll).
type pollState struct {
	leading bool
	lead    LeaderState // the leader item as last written, while leading
	// leadOK is when the last renewal of the leader item took effect.
	leadOK time.Time
	// seenLeader is the leader item as last read, and since when its
	// counter is as read: the lock's expiry is judged from it.
	seenLeader      LeaderState
	seenLeaderSince time.Time
	notice          int64 // this worker's notice count as last acted on
	noticeKnown     bool
	// incoming are leases handed over to this worker whose holder has not
	// finished yet, and since when each counter is as read.
	incoming map[string]observation
	// notify are the workers to notify at the next renewal of the leader
	// item (the leader's assignments).
	notify []string
	lp     leaderPass
}

// pollPass is one pass of the poll loop: it renews or reads the leader
// item (taking it over when it expired), looks up the leases assigned to
// this worker when its notice count moved, follows hand-overs to it, and,
// on the leader, makes the leader's pass. It returns when the next pass is
// due.
func (c *Coordinator) pollPass(ctx context.Context) time.Time {
	c.pollMu.Lock()
	defer c.pollMu.Unlock()
	p := &c.poll
	next := c.now().Add(c.cfg.TakeInterval)
	c.metrics.takerPasses.Inc()
	c.unsentMu.Lock()
	unsent := c.unsent
	c.unsent = nil
	c.unsentMu.Unlock()
	request := c.requested.Swap(false)
	if request && p.leading {
		p.lp.scanned = false // the leader's own request: scan at this pass
		request = false
	}
	if len(unsent) > 0 || request {
		c.notify(ctx, unsent, request)
	}
	st, ok := c.leaderItem(ctx)
	if !ok {
		return next
	}
	if n := st.Notices[c.cfg.WorkerID]; !p.noticeKnown || n != p.notice {
		if c.discover(ctx) {
			p.notice, p.noticeKnown = n, true
		}
	}
	c.followIncoming(ctx)
	c.recheckDuplicates(ctx)
	if p.leading {
		if at := c.lead(ctx); at.Before(next) {
			next = at
		}
		if at := p.leadOK.Add(c.renewLeaderEvery()); at.Before(next) {
			next = at // renew the leader item well within its expiry
		}
	}
	return next
}

// renewLeaderEvery is how often the leader renews the leader item: every
// TakeInterval, and at least every FailoverTime/5 (others take it over
// after FailoverTime/2 without a change).
func (c *Coordinator) renewLeaderEvery() time.Duration {
	return min(c.cfg.TakeInterval, c.cfg.FailoverTime/5)
}

// leaderItem renews the leader item if this worker leads, or reads it and
// takes it over if it is free or expired; it returns the item, and false
// when it could not be read.
func (c *Coordinator) leaderItem(ctx context.Context) (LeaderState, bool) {
	p := &c.poll
	me := c.cfg.WorkerID
	if p.leading && len(p.notify) == 0 && c.now().Before(p.leadOK.Add(c.renewLeaderEvery())) {
		return p.lead, true // renewed recently: a pass for the leader's own work
	}
	if p.leading {
		p.lead.Live = c.liveForItem()
		st, err := c.cfg.Store.RenewLeader(ctx, p.lead, p.notify)
		switch {
		case err == nil:
			p.notify = nil
			p.lead, p.leadOK = st, c.now()
			return st, true
		case errors.Is(err, ErrConflict):
			// Re-read: a renewal of ours whose reply was lost moved the
			// counter by one, and this worker still leads.
			if cur, rerr := c.cfg.Store.Leader(ctx); rerr == nil && cur.Owner == me && cur.Counter == p.lead.Counter+1 {
				p.notify = nil // that write added them
				p.lead, p.leadOK = cur, c.now()
				return cur, true
			}
			c.stopLeading("the leader item was taken over")
		default:
			if ctx.Err() == nil {
				c.countStoreError("renew_leader", err)
			}
			if c.now().Sub(p.leadOK) >= c.cfg.FailoverTime/leaderExpiry {
				c.stopLeading("the leader item could not be renewed in time")
			}
			return LeaderState{}, false
		}
	}
	if c.stopping() && p.seenLeader.Counter != 0 && p.seenLeader.Owner != me {
		// A worker shutting down no longer competes to lead, and needs
		// the item only for its notices, which it no longer acts on.
		return LeaderState{}, false
	}
	st, err := c.cfg.Store.Leader(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.countStoreError("read_leader", err)
		}
		return LeaderState{}, false
	}
	now := c.now()
	if st.Counter != p.seenLeader.Counter || st.Owner != p.seenLeader.Owner || p.seenLeaderSince.IsZero() {
		p.seenLeaderSince = now
	}
	p.seenLeader = st
	expired := now.Sub(p.seenLeaderSince) >= c.cfg.FailoverTime/leaderExpiry
	if c.stopping() || (st.Owner != "" && st.Owner != me && !expired) {
		return st, true
	}
	// Free, expired, or ours from an earlier run of this worker.
	got, err := c.cfg.Store.AcquireLeader(ctx, st, me)
	if err != nil {
		if !errors.Is(err, ErrConflict) && ctx.Err() == nil {
			c.countStoreError("acquire_leader", err)
		}
		return st, true
	}
	c.startLeading(got, st)
	return got, true
}

// liveForItem returns the live workers the leader item names: those the
// leader judges alive and not leaving, the leader too unless it stops.
// pollMu is held.
func (c *Coordinator) liveForItem() []string {
	live := c.poll.lp.liveSet(c.now(), c.cfg.FailoverTime)
	if !c.stopping() && !slices.Contains(live, c.cfg.WorkerID) {
		live = append(live, c.cfg.WorkerID)
		slices.Sort(live)
	} else if c.stopping() {
		live = slices.DeleteFunc(live, func(id string) bool { return id == c.cfg.WorkerID })
	}
	return live
}

func (c *Coordinator) startLeading(st, prev LeaderState) {
	p := &c.poll
	p.leading, p.lead, p.leadOK = true, st, c.now()
	p.lp = leaderPass{workers: make(map[string]workerObservation)}
	if prev.Counter > 0 {
		p.lp.trusted = make(map[string]bool, len(prev.Live))
		for _, id := range prev.Live {
			p.lp.trusted[id] = true
		}
	}
	if prev.Owner != "" && prev.Owner != c.cfg.WorkerID {
		// The previous leader stopped renewing the item when its counter
		// stopped: judge its heartbeat from then, so that its own leases
		// are taken over as soon as another worker's would be.
		p.lp.workers[prev.Owner] = workerObservation{heartbeat: -1, since: p.seenLeaderSince}
	}
	c.leading.Store(true)
	c.metrics.leader.Set(1)
	c.log.Info("leading the fleet", zap.String("previous", prev.Owner), zap.Int64("counter", st.Counter))
}

func (c *Coordinator) stopLeading(why string) {
	p := &c.poll
	p.leading = false
	p.seenLeader, p.seenLeaderSince = LeaderState{}, time.Time{}
	c.leading.Store(false)
	c.metrics.leader.Set(0)
	c.log.Info("no longer leading the fleet", zap.String("reason", why))
}

// Leading reports whether this worker leads the fleet: it scans the lease
// table and assigns leases, and the shard sync runs on it.
func (c *Coordinator) Leading() bool { return c.leading.Load() }

// discover looks up the leases the table names this worker as the owner
// of, and takes up those it does not hold: assigned to it by the leader,
// handed over by a worker shutting down, or left by an earlier run of this
// worker. A lease handed over whose holder has not finished is followed
// until it has. It reports whether the lookup succeeded.
func (c *Coordinator) discover(ctx context.Context) bool {
	keys, err := c.cfg.Store.Owned(ctx, c.cfg.WorkerID)
	if err != nil {
		if ctx.Err() == nil {
			c.countStoreError("owned", err)
			c.log.Warn("looking up assigned leases failed", zap.Error(err))
		}
		return false
	}
	c.mu.Lock()
	var fresh []string
	for _, k := range keys {
		if c.held[k] == nil && !c.duplicates[k] {
			if _, ok := c.poll.incoming[k]; !ok {
				fresh = append(fresh, k)
			}
		}
	}
	c.mu.Unlock()
	var take []Lease
	for _, k := range fresh {
		l, err := c.get(ctx, k)
		if err != nil {
			if !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
				c.log.Warn("reading an assigned lease failed", zap.String("lease", k), zap.Error(err))
				return false
			}
			continue
		}
		switch {
		case l.Owner != c.cfg.WorkerID || l.Finished():
		case l.CheckpointOwner != "":
			if c.poll.incoming == nil {
				c.poll.incoming = make(map[string]observation)
			}
			c.poll.incoming[k] = observation{counter: l.Counter, owner: l.CheckpointOwner, since: c.now()}
		default:
			take = append(take, l)
		}
	}
	c.takeUp(ctx, take)
	return true
}

// followIncoming reads the leases being handed over to this worker: one
// its holder released is taken up; one whose counter stood still for
// FailoverTime (the holder did not finish) is taken; one that went
// elsewhere is forgotten.
func (c *Coordinator) followIncoming(ctx context.Context) {
	var take []Lease
	for _, k := range slices.Sorted(maps.Keys(c.poll.incoming)) {
		o := c.poll.incoming[k]
		l, err := c.get(ctx, k)
		switch {
		case errors.Is(err, ErrNotFound):
			delete(c.poll.incoming, k)
			continue
		case err != nil:
			continue
		}
		switch {
		case l.Owner != c.cfg.WorkerID || l.Finished():
			delete(c.poll.incoming, k)
		case l.CheckpointOwner == "":
			delete(c.poll.incoming, k)
			take = append(take, l)
		case l.Counter != o.counter:
			c.poll.incoming[k] = observation{counter: l.Counter, owner: l.CheckpointOwner, since: c.now()}
		case c.now().Sub(o.since) >= c.cfg.FailoverTime:
			delete(c.poll.incoming, k)
			take = append(take, l) // forced: take ends the hand-over
		}
	}
	c.takeUp(ctx, take)
}

// takeUp takes the given leases, within MaxLeasesForWorker; a lease over
// the cap, or assigned while this worker shuts down, is given back to the
// leader.
func (c *Coordinator) takeUp(ctx context.Context, ls []Lease) {
	if len(ls) == 0 {
		return
	}
	c.mu.Lock()
	room := len(ls)
	if c.noTaking {
		room = 0
	} else if limit := c.cfg.MaxLeasesForWorker; limit > 0 {
		room = max(0, limit-len(c.held))
	}
	c.mu.Unlock()
	room = min(room, len(ls))
	forEach(ctx, ls[:room], c.cfg.MaxConcurrentWrites, func(l Lease) { c.take(ctx, l) })
	back := ls[room:]
	forEach(ctx, back, c.cfg.MaxConcurrentWrites, func(l Lease) {
		if l.CheckpointOwner != "" {
			return // the holder finishes it; its leader passes it on
		}
		if _, err := c.cfg.Store.Release(ctx, l); err != nil && ctx.Err() == nil && !errors.Is(err, ErrConflict) {
			c.log.Warn("giving back an assigned lease failed", zap.String("lease", l.Key), zap.Error(err))
		}
	})
	if len(back) > 0 {
		c.requested.Store(true)
	}
}

// TriggerTake asks the leader for an assignment pass (for example after
// child leases were created at the end of a shard), instead of at its next
// scan. It does not block: the request is sent by the poll loop, and
// requests made while one is pending are merged.
func (c *Coordinator) TriggerTake() {
	c.requested.Store(true)
	select {
	case c.takeNow <- struct{}{}:
	default:
	}
}

// recheckDuplicates looks again at the leases lost "to another process
// with this WorkerID" (their counter moved, the owner still this ID): the
// leader assigning such a lease anew to this worker, after an operator
// reset or released it, looks the same to the holder. One whose counter
// then stands still for 1.5 × RenewInterval is renewed by nobody: it was
// assigned here, and is taken up. One whose counter moved is watched
// again from the new counter: another process renewing it keeps moving it,
// and is left to it.
func (c *Coordinator) recheckDuplicates(ctx context.Context) {
	c.mu.Lock()
	var due []string
	for k, o := range c.suspects {
		if c.now().Sub(o.since) >= c.cfg.RenewInterval*3/2 {
			due = append(due, k)
		}
	}
	c.mu.Unlock()
	var take []Lease
	for _, k := range due {
		l, err := c.get(ctx, k)
		if err != nil && !errors.Is(err, ErrNotFound) {
			continue // read again at the next pass
		}
		c.mu.Lock()
		o := c.suspects[k]
		delete(c.suspects, k)
		c.mu.Unlock()
		switch {
		case err != nil || l.Owner != c.cfg.WorkerID || l.CheckpointOwner != "" || l.Finished():
		case l.Counter == o.counter:
			take = append(take, l)
		default:
			// Moved since (a process renewing it, or one more write of the
			// operator's): watched again from this counter.
			c.mu.Lock()
			c.suspects[k] = observation{counter: l.Counter, owner: l.Owner, since: c.now()}
			c.mu.Unlock()
		}
	}
	c.takeUp(ctx, take)
}
