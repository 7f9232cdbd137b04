package lease

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"
)

// workerObservation is what the leader saw of a worker's heartbeat: its
// count and when the count was first seen with that value (heartbeat -1:
// not read yet). A worker is dead once the count stood still for
// FailoverTime, as judged by the leader's clock alone.
type workerObservation struct {
	heartbeat int64
	since     time.Time
	state     WorkerState
}

// leaderPass is the state of the leader's passes. It is reset when this
// worker starts leading.
type leaderPass struct {
	workers     map[string]workerObservation
	workersRead bool
	nextWorkers time.Time // when the worker metrics table is read next
	nextScan    time.Time // when the lease table is scanned next
	requests    int64     // the assignment requests count acted on
	scanned     bool
	live        []string // the other live workers as of the last read of the worker metrics
	// trusted are the workers the previous leader judged live (nil: there
	// was no leader before, and every worker with an item counts as live
	// until it is seen dead). Another worker is judged dead until its
	// heartbeat is seen to move: its item may be a dead worker's.
	trusted map[string]bool
}

// lead is the leader's share of a poll pass: it reads the worker metrics
// table every WorkerCheckInterval (and when a worker is due to expire),
// and scans the lease table and assigns leases when something changed
// (a worker joined, left or died, a worker asked for a pass) or every
// ScanInterval. It returns when it wants to run next.
func (c *Coordinator) lead(ctx context.Context) time.Time {
	p := &c.poll
	lp := &p.lp
	now := c.now()
	scan := !lp.scanned || !now.Before(lp.nextScan)
	if p.lead.Requests != lp.requests {
		scan = true
	}
	if !lp.workersRead || !now.Before(lp.nextWorkers) {
		changed, ok := c.readWorkers(ctx)
		if !ok {
			return now.Add(c.cfg.TakeInterval)
		}
		scan = scan || changed
	}
	if scan {
		requests := p.lead.Requests
		if c.assignPass(ctx) {
			lp.requests = requests
			lp.scanned = true
		}
	}
	if lp.nextScan.Before(lp.nextWorkers) {
		return lp.nextScan
	}
	return lp.nextWorkers
}

// readWorkers reads the worker metrics table and updates the
// observations. It reports whether the set of live workers changed.
func (c *Coordinator) readWorkers(ctx context.Context) (changed, ok bool) {
	lp := &c.poll.lp
	ws, err := c.cfg.Store.Workers(ctx)
	now := c.now()
	if err != nil {
		if ctx.Err() == nil {
			c.countStoreError("workers", err)
			c.log.Warn("leader: reading the worker metrics failed", zap.Error(err))
		}
		return false, false
	}
	lp.workersRead = true
	lp.nextWorkers = now.Add(c.cfg.WorkerCheckInterval)
	seen := make(map[string]bool, len(ws))
	for _, w := range ws {
		seen[w.ID] = true
		o, known := lp.workers[w.ID]
		switch {
		case !known:
			o = workerObservation{heartbeat: w.Heartbeat, since: now}
			if lp.trusted != nil && !lp.trusted[w.ID] && w.ID != c.cfg.WorkerID {
				o.since = now.Add(-c.cfg.FailoverTime)
			}
		case o.heartbeat == -1: // the previous leader: judged from its lock
			o.heartbeat = w.Heartbeat
		case o.heartbeat != w.Heartbeat:
			o.heartbeat, o.since = w.Heartbeat, now
		}
		o.state = w
		lp.workers[w.ID] = o
		dead := now.Sub(o.since) >= c.cfg.FailoverTime
		if dead && w.ID != c.cfg.WorkerID && now.Sub(o.since) >= 2*c.cfg.FailoverTime {
			// Long dead: its leases were assigned a FailoverTime ago.
			if err := c.cfg.Store.RemoveWorker(ctx, w.ID); err == nil {
				delete(lp.workers, w.ID)
				c.log.Info("leader: removed the metrics of a dead worker", zap.String("dead", w.ID))
			}
			continue
		}
		if !dead {
			if exp := o.since.Add(c.cfg.FailoverTime + expiryLag); exp.Before(lp.nextWorkers) {
				lp.nextWorkers = exp
			}
		}
	}
	for id := range lp.workers {
		if !seen[id] && lp.workers[id].heartbeat != -1 {
			delete(lp.workers, id) // left: its item was removed
		}
	}
	// The other workers: the leader counts itself live while it runs.
	live := slices.DeleteFunc(lp.liveSet(now, c.cfg.FailoverTime), func(id string) bool { return id == c.cfg.WorkerID })
	changed = !slices.Equal(live, lp.live)
	lp.live = live
	return changed, true
}

// liveSet returns the IDs of the workers alive and not leaving, sorted.
func (lp *leaderPass) liveSet(now time.Time, failover time.Duration) []string {
	var ids []string
	for id, o := range lp.workers {
		if o.heartbeat != -1 && now.Sub(o.since) < failover && !o.state.Leaving {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// assignPass scans the lease table and assigns: free and expired leases to
// the workers the balancing plan names, moves for balance as hand-overs.
// It reports whether the scan succeeded.
func (c *Coordinator) assignPass(ctx context.Context) bool {
	lp := &c.poll.lp
	leases, err := c.cfg.Store.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.countStoreError("list", err)
			c.log.Warn("leader: scanning the lease table failed", zap.Error(err))
		}
		return false
	}
	now := c.now()
	me := c.cfg.WorkerID
	lp.nextScan = now.Add(c.cfg.ScanInterval)

	live := map[string]bool{}
	caps := map[string]int{}
	for _, id := range lp.liveSet(now, c.cfg.FailoverTime) {
		live[id] = true
		caps[id] = lp.workers[id].state.MaxLeases
	}
	c.mu.Lock()
	noTaking := c.noTaking
	c.mu.Unlock()
	delete(live, me)
	if !noTaking {
		live[me] = true
		caps[me] = c.cfg.MaxLeasesForWorker
	}
	// Workers with an item that are not live: dead, or leaving (a leaving
	// worker hands its leases over itself; they are left to it until its
	// heartbeat stops).
	known := func(id string) bool { _, ok := lp.workers[id]; return ok || id == me }
	leaving := func(id string) bool {
		o, ok := lp.workers[id]
		return ok && o.state.Leaving && now.Sub(o.since) < c.cfg.FailoverTime
	}

	c.mu.Lock()
	v := view{owned: make(map[string][]Lease), byCount: c.cfg.BalanceByCount}
	seen := make(map[string]observation, len(leases))
	var reacquire []Lease
	unfinished := 0
	for _, l := range leases {
		o, ok := c.seen[l.Key]
		if !ok || o.counter != l.Counter || o.owner != l.Owner {
			o = observation{counter: l.Counter, owner: l.Owner, since: now}
		}
		seen[l.Key] = o
		if l.Finished() {
			continue
		}
		unfinished++
		switch {
		case l.Owner == "":
			v.free = append(v.free, l)
		case l.Owner == me && c.held[l.Key] == nil && !c.duplicates[l.Key] && l.CheckpointOwner == "" && !noTaking:
			// This worker's in the table but not held (a take of its own
			// whose outcome it could not learn): taken up again.
			reacquire = append(reacquire, l)
			v.owned[me] = append(v.owned[me], l)
		case live[l.Owner]:
			v.owned[l.Owner] = append(v.owned[l.Owner], l)
		case leaving(l.Owner):
		case known(l.Owner): // dead
			v.free = append(v.free, l)
		case now.Sub(o.since) >= c.cfg.FailoverTime:
			// Owned by a worker without heartbeats (a Java KCL worker, or
			// one not started yet) whose counter stood still.
			v.free = append(v.free, l)
		default:
			if exp := o.since.Add(c.cfg.FailoverTime + expiryLag); exp.Before(lp.nextScan) {
				lp.nextScan = exp
			}
		}
	}
	c.seen = seen
	c.mu.Unlock()
	c.metrics.leasesInTable.Set(float64(unfinished))

	for w := range live {
		v.workers = append(v.workers, w)
	}
	slices.Sort(v.workers)
	if len(v.workers) == 0 {
		return true
	}
	forEach(ctx, reacquire, c.cfg.MaxConcurrentWrites, func(l Lease) { c.take(ctx, l) })
	plan := v.assignments()
	assigned := map[string]bool{}
	for w, ls := range plan {
		if cap := caps[w]; cap > 0 {
			room := max(0, cap-len(v.owned[w]))
			ls = ls[:min(len(ls), room)]
			plan[w] = ls
		}
		for _, l := range ls {
			assigned[l.Key] = true
		}
	}
	// Free leases the plan left to capped workers go to whoever has room,
	// fewest leases first.
	count := func(w string) int { return len(v.owned[w]) + len(plan[w]) }
	for _, l := range v.free {
		if assigned[l.Key] {
			continue
		}
		best := ""
		for _, w := range v.workers {
			if cap := caps[w]; cap > 0 && count(w) >= cap {
				continue
			}
			if best == "" || count(w) < count(best) {
				best = w
			}
		}
		if best == "" {
			break
		}
		plan[best] = append(plan[best], l)
		assigned[l.Key] = true
	}
	c.carryOut(ctx, plan, live)
	return true
}

type assignment struct {
	l  Lease
	to string
}

// carryOut makes the plan's writes, MaxConcurrentWrites at a time, and
// notifies the workers that got leases. Its own share the leader takes at
// once.
func (c *Coordinator) carryOut(ctx context.Context, plan map[string][]Lease, live map[string]bool) {
	var work []assignment
	for _, w := range slices.Sorted(maps.Keys(plan)) {
		for _, l := range plan[w] {
			work = append(work, assignment{l, w})
		}
	}
	if len(work) == 0 {
		return
	}
	me := c.cfg.WorkerID
	done := make([]bool, len(work))
	idx := make(map[string]int, len(work))
	for i, a := range work {
		idx[a.l.Key] = i
	}
	forEach(ctx, work, c.cfg.MaxConcurrentWrites, func(a assignment) {
		l := a.l
		ownerLive := l.Owner != "" && live[l.Owner]
		switch {
		case ownerLive && l.CheckpointOwner == a.to:
			// a.to is finishing it for its owner; it may move back once
			// that one holds it.
		case ownerLive:
			done[idx[l.Key]] = c.askHandOver(ctx, l, a.to)
		case a.to == me:
			c.take(ctx, l)
		default:
			done[idx[l.Key]] = c.assign(ctx, l, a.to)
		}
	})
	var notify []string
	for i, a := range work {
		if done[i] {
			notify = append(notify, a.to)
		} else if a.to != me || a.l.Owner != "" && live[a.l.Owner] {
			c.poll.lp.scanned = false // the table moved under the plan: scan again at the next pass
		}
	}
	if len(notify) == 0 {
		return
	}
	p := &c.poll
	p.notify = append(p.notify, notify...)
	// Tell them now rather than at the next pass.
	p.lead.Live = c.liveForItem()
	if st, err := c.cfg.Store.RenewLeader(ctx, p.lead, p.notify); err == nil {
		p.notify = nil
		p.lead, p.leadOK = st, c.now()
	} else if errors.Is(err, ErrConflict) {
		c.stopLeading("the leader item was taken over")
	}
}

// assign makes worker to the owner of a free or expired lease (a take on
// its behalf); to takes it up once notified. It reports success.
func (c *Coordinator) assign(ctx context.Context, l Lease, to string) bool {
	l = c.pinLatest(l)
	err := withRetry(ctx, c.retry, func() error {
		_, err := c.cfg.Store.Take(ctx, l, to)
		if err != nil && ctx.Err() == nil {
			c.countStoreError("assign", err)
		}
		return err
	})
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, ErrConflict) {
			c.log.Warn("leader: assigning a lease failed", zap.String("lease", l.Key), zap.String("to", to), zap.Error(err))
		}
		return false
	}
	c.metrics.assigned.Inc()
	if l.CheckpointOwner != "" {
		c.metrics.handOverForced.Inc()
	}
	c.log.Info("leader: lease assigned", zap.String("lease", l.Key), zap.String("to", to), zap.String("from", l.Owner))
	return true
}
