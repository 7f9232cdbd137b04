package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/backoff"
)

// Config configures a Coordinator. The zero value of every field but Store
// and WorkerID selects its default.
type Config struct {
	// Store is the lease table. Required.
	Store Store
	// WorkerID names this worker in the leaseOwner attribute. It must be
	// unique among the processes sharing the table: a lease whose counter
	// moved without a write of this coordinator's is lost even if the
	// owner recorded is this ID, and a second process running with the
	// same ID (a restarted process whose predecessor still runs) is logged
	// as an error and counted (kinesis_lease_duplicate_worker_id_total).
	// Required.
	WorkerID string
	// FailoverTime is how long a lease may go without its counter changing
	// before other workers consider it expired and take it. It is also the
	// longest this worker keeps a lease it failed to renew. Default 10s.
	FailoverTime time.Duration
	// RenewInterval is how often held leases are renewed. Must be below
	// FailoverTime. Default FailoverTime/3.
	RenewInterval time.Duration
	// TakeInterval is how often each worker reads the leader item of the
	// coordinator state table (one item): to learn of leases assigned to
	// it, and to take over leading when the leader stopped renewing it for
	// FailoverTime/2. The leader renews the item as often instead (and at
	// least every FailoverTime/5). A lease assigned or handed over to a
	// worker is taken up within TakeInterval. Default FailoverTime/5 (2s).
	TakeInterval time.Duration
	// WorkerCheckInterval is how often the leader reads the worker metrics
	// table (every worker's heartbeat, written every RenewInterval). A
	// worker whose heartbeat stood still for FailoverTime is dead: its
	// leases are assigned to others within FailoverTime +
	// WorkerCheckInterval of its last heartbeat. Default FailoverTime/3.
	WorkerCheckInterval time.Duration
	// ScanInterval is how often the leader scans the lease table when
	// nothing asks for it sooner (a worker joining, leaving or dying, a
	// lease released, child leases created): to balance by the measured
	// throughput and to notice leases whose owner stopped renewing them.
	// Default 3 × FailoverTime (30s): 2 scans a minute, by one worker.
	ScanInterval time.Duration
	// MaxLeasesForWorker caps the leases this worker holds. The other
	// workers do not know the cap: leases their plan leaves to a capped
	// worker are taken by whoever sees them still free at a third pass.
	// Default 0: no cap.
	MaxLeasesForWorker int
	// MaxConcurrentWrites bounds the lease table writes in flight at once,
	// for each kind of write: renewals (of a renewal pass), takes (of a
	// taker pass) and releases (of ReleaseAll) each run at most this many
	// at a time. Checkpoints (Update) are made by the caller and not
	// bounded here. Default 16.
	MaxConcurrentWrites int
	// OnAcquired is called after this worker took a lease. Optional.
	// Callbacks run one at a time, in order, on a goroutine of Run (events
	// arising while Run is not running wait for the next Run); they must
	// not block for long, and may call the coordinator's methods.
	OnAcquired func(Lease)
	// OnLost is called after this worker lost a lease it held: taken by
	// another worker, deleted, or not renewed within FailoverTime. It is
	// not called for leases given up with Release or ReleaseAll. Optional;
	// same rules as OnAcquired.
	OnLost func(Lease)
	// Throughput reports the rate this worker reads a held lease's shard
	// at, in KiB per second, and whether it has measured it yet; each
	// renewal writes it to the lease (throughputKBps), and the balancing
	// plan spreads it over the workers (see BalanceByCount). Default nil:
	// nothing is measured, and leases are balanced by count.
	Throughput func(key string) (kbps float64, ok bool)
	// BalanceByCount balances leases by count even when their throughput
	// is known. Default false: by throughput once every lease has it.
	BalanceByCount bool
	// OnHandOver is called when another worker asked for a held lease to
	// balance the load (Lease.CheckpointOwner is this worker, Owner the
	// next one): the holder stops processing the shard after its batch in
	// flight, checkpoints, and calls Release, which hands the lease over;
	// until then it may checkpoint as before, and the lease is no longer
	// renewed. A hand-over not finished within FailoverTime is taken over
	// by the next owner. Default nil: the lease is handed over at once.
	// Same rules as OnAcquired.
	OnHandOver func(Lease)
	// Logger receives the coordinator's logs. Default: none.
	Logger *zap.Logger
	// Metrics registers the coordinator's metrics (kinesis_lease_*).
	// Default: none.
	Metrics prometheus.Registerer
}

// withDefaults returns cfg with zero fields set to their defaults.
func (cfg Config) withDefaults() Config {
	if cfg.FailoverTime == 0 {
		cfg.FailoverTime = 10 * time.Second
	}
	if cfg.RenewInterval == 0 {
		cfg.RenewInterval = cfg.FailoverTime / 3
	}
	if cfg.TakeInterval == 0 {
		cfg.TakeInterval = cfg.FailoverTime / 5
	}
	if cfg.WorkerCheckInterval == 0 {
		cfg.WorkerCheckInterval = cfg.FailoverTime / 3
	}
	if cfg.ScanInterval == 0 {
		cfg.ScanInterval = 3 * cfg.FailoverTime
	}
	if cfg.MaxConcurrentWrites == 0 {
		cfg.MaxConcurrentWrites = 16
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg
}

// Validate reports the first invalid field of cfg, defaults applied.
func (cfg Config) Validate() error {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Store == nil:
		return errors.New("lease: Config.Store is required")
	case cfg.WorkerID == "":
		return errors.New("lease: Config.WorkerID is required")
	case cfg.FailoverTime < 0:
		return fmt.Errorf("lease: Config.FailoverTime %v is negative", cfg.FailoverTime)
	case cfg.RenewInterval <= 0 || cfg.RenewInterval >= cfg.FailoverTime:
		return fmt.Errorf("lease: Config.RenewInterval %v must be positive and below FailoverTime %v", cfg.RenewInterval, cfg.FailoverTime)
	case cfg.TakeInterval <= 0:
		return fmt.Errorf("lease: Config.TakeInterval %v must be positive", cfg.TakeInterval)
	case cfg.WorkerCheckInterval <= 0 || cfg.WorkerCheckInterval >= cfg.FailoverTime:
		return fmt.Errorf("lease: Config.WorkerCheckInterval %v must be positive and below FailoverTime %v", cfg.WorkerCheckInterval, cfg.FailoverTime)
	case cfg.ScanInterval <= 0:
		return fmt.Errorf("lease: Config.ScanInterval %v must be positive", cfg.ScanInterval)
	case cfg.MaxLeasesForWorker < 0:
		return fmt.Errorf("lease: Config.MaxLeasesForWorker %d is negative", cfg.MaxLeasesForWorker)
	case cfg.MaxConcurrentWrites < 0:
		return fmt.Errorf("lease: Config.MaxConcurrentWrites %d is negative", cfg.MaxConcurrentWrites)
	}
	return nil
}

// Coordinator runs one worker's side of the lease protocol. Create it with
// NewCoordinator and start it with Run.
//
// Every RenewInterval it renews the leases it holds; a renewal whose
// condition fails is re-read, and the lease reported lost (OnLost) unless
// the counter read is the one a write of this coordinator's whose reply
// was lost produced: a counter moved by anyone else means the lease is
// lost, even if the owner recorded is this WorkerID (then another process
// runs with the same ID, and the lease is left to it while it renews it).
// It writes its heartbeat to the worker metrics table after each renewal
// pass. Every TakeInterval it reads the leader item of the coordinator
// state table (one item): when its notice count there moved, it looks up
// the leases it owns (the owner index) and takes up those it does not hold
// (assigned by the leader, or handed to it); when the item stood still for
// FailoverTime/2, or is free, it takes it and leads. The leader renews the
// item instead, reads the heartbeats every WorkerCheckInterval (a worker
// whose heartbeat stood still for FailoverTime is dead), and scans the
// lease table when the live workers changed, when asked, or every
// ScanInterval: a lease unowned, or owned by a dead worker, is free; from
// the scan it computes the balancing plan (each live worker gets
// floor(M/N) or ceil(M/N) of the M unfinished leases, or their throughput
// spread; see balance.go), assigns free leases, asks holders to hand over
// the leases it moves, and notifies the workers concerned. A dead worker's
// leases are so assigned within FailoverTime + WorkerCheckInterval of its
// last heartbeat, and taken up within TakeInterval more. Leases
// checkpointed at SHARD_END are neither counted nor taken. No step needs
// synchronised clocks. The protocol is described in docs/design.md
// ("Lease protocol").
//
// A renewal, take, release or checkpoint that fails with a retryable error
// is retried a few times with backoff; a failed renewal is made again at
// the next pass. A failed scan or read is made again at the next pass:
// nothing was written.
type Coordinator struct {
	cfg     Config
	log     *zap.Logger
	metrics *coordinatorMetrics
	now     func() time.Time
	retry   backoff.Policy // between attempts of a failed lease table call

	running   atomic.Bool
	takeNow   chan struct{} // wakes the poll loop
	requested atomic.Bool   // an assignment pass to ask the leader for
	unsentMu  sync.Mutex
	unsent    []string // notices that failed, sent again at the next poll pass
	leading   atomic.Bool

	pollMu sync.Mutex
	poll   pollState // guarded by pollMu
	// leaving is the shutdown's choice of next owners for the leases it
	// hands over; nil until the first is released. Guarded by mu.
	leaving *receivers

	mu       sync.Mutex
	held     map[string]*heldLease
	seen     map[string]observation // every lease of the leader's last scan, by key
	noTaking bool
	// duplicates are the leases lost to another process running with
	// this WorkerID: owned by this ID in the table, they are not taken
	// back while that process renews them.
	duplicates map[string]bool
	// suspects are those leases, as read when lost: looked at again by
	// recheckDuplicates.
	suspects map[string]observation

	events eventQueue
}

// heldLease is a lease this worker holds. Its mutex serializes the writes
// to it (renewals, checkpoints, release), so each write is conditioned on
// the counter the previous one produced.
type heldLease struct {
	mu    sync.Mutex
	lease Lease // as last written or read; guarded by mu
	// lastRenewed is when the last write of ours known to have taken
	// effect was made (the start of its call): others see the lease
	// expire no earlier than FailoverTime after it. Guarded by mu.
	lastRenewed time.Time
	// unknownSince is the start of the first write since lastRenewed that
	// failed without telling whether it took effect (a timeout, a cut
	// connection); zero when none. Guarded by mu.
	unknownSince time.Time
	gone         bool // no longer held; guarded by mu
	// handingOver is set once another worker asked for the lease: it is
	// no longer renewed, and Release hands it over. Guarded by mu.
	handingOver bool

	// view is a copy of lease for readers that must not wait behind a
	// write in flight; nil once gone.
	view atomic.Pointer[Lease]
}

// newHeldLease returns a lease taken by a call started at start.
func newHeldLease(l Lease, start time.Time) *heldLease {
	h := &heldLease{lastRenewed: start}
	h.set(l)
	return h
}

// set records the lease as last written or read. h.mu is held.
func (h *heldLease) set(l Lease) {
	h.lease = l
	v := l.Clone()
	h.view.Store(&v)
}

// written records a write of ours that took effect, made by a call started
// at start. h.mu is held.
func (h *heldLease) written(l Lease, start time.Time) {
	h.set(l)
	h.lastRenewed = start
	h.unknownSince = time.Time{}
}

// failed records a write that failed, made by a call started at start: a
// failed condition took no effect; any other failure may have. h.mu is
// held.
func (h *heldLease) failed(err error, start time.Time) {
	if !errors.Is(err, ErrConflict) && h.unknownSince.IsZero() {
		h.unknownSince = start
	}
}

// ownWrite reports whether l's counter, read after a failed condition, is
// the one a write of ours whose reply was lost produced: a write of unknown
// outcome was made since the last one known, and l has the held counter
// plus one. Every write since the last one known was conditioned on the
// held counter (a write of unknown outcome leaves it unchanged), so at
// most one of them took effect, and a write increments the counter by one:
// any other counter was written by someone else, whatever owner it names.
// h.mu is held.
func (h *heldLease) ownWrite(l Lease) bool {
	return !h.unknownSince.IsZero() && l.Counter == h.lease.Counter+1
}

// adopt records the lease as read after a failed condition, when ownWrite
// holds: the counter moved through a write of ours whose reply was lost,
// made no earlier than unknownSince. h.mu is held.
func (h *heldLease) adopt(l Lease) {
	h.set(l)
	if h.unknownSince.After(h.lastRenewed) {
		h.lastRenewed = h.unknownSince
	}
	h.unknownSince = time.Time{}
}

// drop marks the lease no longer held. h.mu is held.
func (h *heldLease) drop() {
	h.gone = true
	h.view.Store(nil)
}

// observation is what a scan saw of a lease: its counter and when the
// counter was first seen with that value. Expiry is judged from it, so no
// clock sync between workers is needed.
type observation struct {
	counter int64
	owner   string
	since   time.Time
}

// NewCoordinator checks cfg and returns a coordinator that holds no lease.
func NewCoordinator(cfg Config) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Coordinator{
		cfg:     cfg,
		log:     cfg.Logger.With(zap.String("worker", cfg.WorkerID)),
		metrics: newCoordinatorMetrics(cfg.Metrics),
		now:     time.Now,
		retry:   storeBackoff,
		takeNow: make(chan struct{}, 1),
		held:    make(map[string]*heldLease),
		seen:    make(map[string]observation),

		duplicates: make(map[string]bool),
		suspects:   make(map[string]observation),
	}, nil
}

// WorkerID returns the worker ID the coordinator writes as owner.
func (c *Coordinator) WorkerID() string { return c.cfg.WorkerID }

// Run renews held leases, writes heartbeats, takes up assigned leases and,
// while this worker leads, assigns leases, until ctx ends, then returns
// nil once every goroutine it started has ended. The lease table and the
// coordinator state and worker metrics tables must exist
// (Store.EnsureTable). Leases still held stay owned in the table (and are
// assigned elsewhere once the heartbeats stopped for FailoverTime): call
// ReleaseAll before cancelling ctx for a graceful hand-off. Run may be
// called only once at a time.
func (c *Coordinator) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("lease: Coordinator.Run already running")
	}
	defer c.running.Store(false)
	var wg sync.WaitGroup
	dispatchCtx, stopDispatch := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); c.events.run(dispatchCtx) }()
	var loops sync.WaitGroup
	loops.Add(2)
	go func() { defer loops.Done(); c.renewLoop(ctx) }()
	go func() { defer loops.Done(); c.pollLoop(ctx) }()
	loops.Wait()
	c.leave()
	stopDispatch() // delivers what is queued, then ends
	wg.Wait()
	return nil
}

func (c *Coordinator) renewLoop(ctx context.Context) {
	c.heartbeat(ctx) // before the first poll pass, so that a leader counts this worker
	t := time.NewTicker(c.cfg.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.renewPass(ctx)
		}
	}
}

func (c *Coordinator) pollLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-c.takeNow:
		}
		next := c.pollPass(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(max(next.Sub(c.now()), time.Millisecond))
	}
}

// StopTaking makes the coordinator take no more leases (it keeps renewing
// the ones it holds). Use it at the start of a graceful shutdown.
func (c *Coordinator) StopTaking() {
	c.mu.Lock()
	c.noTaking = true
	c.mu.Unlock()
}

// Held returns a copy of the leases this worker holds, ordered by key.
func (c *Coordinator) Held() []Lease {
	c.mu.Lock()
	hs := make([]*heldLease, 0, len(c.held))
	for _, h := range c.held {
		hs = append(hs, h)
	}
	c.mu.Unlock()
	out := make([]Lease, 0, len(hs))
	for _, h := range hs {
		if v := h.view.Load(); v != nil {
			out = append(out, v.Clone())
		}
	}
	slices.SortFunc(out, func(a, b Lease) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Lease returns a copy of the held lease with the given key, and whether
// this worker holds it.
func (c *Coordinator) Lease(key string) (Lease, bool) {
	h := c.heldLease(key)
	if h == nil {
		return Lease{}, false
	}
	v := h.view.Load()
	if v == nil {
		return Lease{}, false
	}
	return v.Clone(), true
}

func (c *Coordinator) heldLease(key string) *heldLease {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.held[key]
}

// Update makes a fenced write of a held lease's progress fields: fn gets a
// copy of the lease as last written and changes Checkpoint,
// CheckpointSubSequence, PendingCheckpoint, PendingCheckpointSubSequence,
// OwnerSwitchesSinceCheckpoint or ChildShardIDs (other changes are not
// written); the write is conditional on the counter this worker holds. If
// fn returns an error, nothing is written and Update returns that error.
// Writes to one lease (renewals included) are serialized.
//
// Update fails with ErrLeaseLost if this worker does not hold the lease or
// the lease moved on (then OnLost is called too). A failed condition is
// re-read first: if the counter moved through a write of ours whose reply
// was lost (see recheck), fn is applied again to the lease as read and the
// write retried; a counter moved by anyone else, whatever owner it names,
// means the lease is lost. A retryable failure of the
// write or the re-read is retried with backoff, a few times in all; a
// fatal one is returned at once.
func (c *Coordinator) Update(ctx context.Context, key string, fn func(*Lease) error) (Lease, error) {
	h := c.heldLease(key)
	if h == nil {
		return Lease{}, fmt.Errorf("update lease %q: %w", key, ErrLeaseLost)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return Lease{}, fmt.Errorf("update lease %q: %w", key, ErrLeaseLost)
	}
	for try := 1; ; try++ {
		next := h.lease.Clone()
		if err := fn(&next); err != nil {
			return Lease{}, err
		}
		next.Key, next.Owner, next.Counter = h.lease.Key, h.lease.Owner, h.lease.Counter
		start := c.now()
		stored, err := c.cfg.Store.Checkpoint(ctx, next)
		if err == nil {
			h.written(stored, start)
			return stored.Clone(), nil
		}
		h.failed(err, start)
		c.countStoreError("checkpoint", err)
		if !errors.Is(err, ErrConflict) {
			if try < storeAttempts && retryable(err) && ctx.Err() == nil && backoff.Sleep(ctx, c.retry.Delay(try)) == nil {
				continue // if it took effect, the retry fails its condition and the re-read adopts it
			}
			return Lease{}, fmt.Errorf("update lease %q: %w", key, err)
		}
		ours, rerr := c.recheck(ctx, h)
		if rerr != nil {
			if try < storeAttempts && retryable(rerr) && ctx.Err() == nil && backoff.Sleep(ctx, c.retry.Delay(try)) == nil {
				continue // the write fails its condition again, and is re-read again
			}
			return Lease{}, fmt.Errorf("update lease %q: condition failed, and re-reading failed: %w", key, rerr)
		}
		if !ours {
			c.loseLocked(h, "checkpoint condition failed and the lease moved on without a write of ours")
			return Lease{}, fmt.Errorf("update lease %q: %w", key, ErrLeaseLost)
		}
		if h.gone { // handed over at once to a worker that asked for it
			return Lease{}, fmt.Errorf("update lease %q: %w", key, ErrLeaseLost)
		}
		if try >= storeAttempts {
			return Lease{}, fmt.Errorf("update lease %q: condition failed %d times, each time on a write of ours: %w", key, storeAttempts, err)
		}
	}
}

// recheck re-reads a held lease after a failed condition. If the counter
// moved through a write of ours whose reply was lost (heldLease.ownWrite),
// it adopts the lease as read and reports true. If another worker asked for
// the lease (a hand-over naming this worker as CheckpointOwner), it starts
// handing it over and reports true as well (the lease is gone if it was
// handed over at once). It reports false when the
// lease has another owner, none, is gone, or names this worker with any
// other counter (another process runs with this WorkerID: see
// duplicateLocked), and an error when it could not tell. h.mu is held.
func (c *Coordinator) recheck(ctx context.Context, h *heldLease) (bool, error) {
	cur, err := c.get(ctx, h.lease.Key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if cur.Owner != c.cfg.WorkerID {
		if cur.CheckpointOwner == c.cfg.WorkerID && cur.Counter > h.lease.Counter {
			c.handOverAskedLocked(ctx, h, cur)
			return true, nil // not lost; gone if handed over at once
		}
		return false, nil
	}
	if !h.ownWrite(cur) {
		c.duplicateLocked(h, cur)
		return false, nil
	}
	c.log.Info("lease counter moved by a write of ours; adopting it",
		zap.String("lease", cur.Key), zap.Int64("held_counter", h.lease.Counter), zap.Int64("counter", cur.Counter))
	h.adopt(cur)
	return true, nil
}

// handOverAskedLocked records that another worker asked for a held lease
// (cur, as read, names it as the owner and this worker as CheckpointOwner):
// the lease is no longer renewed, and OnHandOver tells the user, who
// releases it when done; without OnHandOver it is handed over at once.
// h.mu is held.
func (c *Coordinator) handOverAskedLocked(ctx context.Context, h *heldLease, cur Lease) {
	if h.handingOver {
		h.set(cur) // redirected to another next owner: go on from its counter
		return
	}
	h.set(cur)
	h.handingOver = true
	c.log.Info("lease asked for by another worker; handing it over", zap.String("lease", cur.Key), zap.String("to", cur.Owner))
	if c.cfg.OnHandOver == nil {
		c.releaseLocked(ctx, h)
		return
	}
	l, fn := cur.Clone(), c.cfg.OnHandOver
	c.events.push(func() { fn(l) })
}

// get reads a lease after a failed condition, retrying a read that failed
// with a retryable error.
func (c *Coordinator) get(ctx context.Context, key string) (Lease, error) {
	var l Lease
	err := withRetry(ctx, c.retry, func() (err error) {
		l, err = c.cfg.Store.Get(ctx, key)
		if err != nil && !errors.Is(err, ErrNotFound) && ctx.Err() == nil {
			c.countStoreError("get", err)
		}
		return err
	})
	return l, err
}

// duplicateLocked records that a held lease was read with this WorkerID as
// owner and a counter moved without a write of ours: another process runs
// with the same WorkerID and holds it. The caller drops the lease. The
// first time for each lease it is logged as an error; every time it is
// counted. h.mu is held.
func (c *Coordinator) duplicateLocked(h *heldLease, cur Lease) {
	if cur.Counter <= h.lease.Counter {
		return // not moved on: the lease was deleted and made again
	}
	c.metrics.duplicateWorkerID.Inc()
	c.mu.Lock()
	first := !c.duplicates[cur.Key]
	c.duplicates[cur.Key] = true
	c.suspects[cur.Key] = observation{counter: cur.Counter, owner: cur.Owner, since: c.now()}
	c.mu.Unlock()
	if first {
		c.log.Error("duplicate WorkerID detected: another process holds this lease under this worker's WorkerID (or the lease was reset or released by an operator and assigned to this worker again); WorkerID must be unique among the processes sharing the lease table",
			zap.String("worker_id", c.cfg.WorkerID), zap.String("lease", cur.Key),
			zap.Int64("held_counter", h.lease.Counter), zap.Int64("counter", cur.Counter))
	}
}

// loseLocked drops a held lease and reports it lost. h.mu is held.
func (c *Coordinator) loseLocked(h *heldLease, why string) {
	h.drop()
	c.mu.Lock()
	if c.held[h.lease.Key] == h {
		delete(c.held, h.lease.Key)
	}
	n := len(c.held)
	c.mu.Unlock()
	c.metrics.held.Set(float64(n))
	c.metrics.lost.Inc()
	c.log.Info("lease lost", zap.String("lease", h.lease.Key), zap.String("reason", why))
	c.TriggerTake() // the leader assigns it if it is free (released by an operator, say)
	if c.cfg.OnLost != nil {
		l, fn := h.lease.Clone(), c.cfg.OnLost
		c.events.push(func() { fn(l) })
	}
}

// Release gives up a held lease: the owner is removed in the table and the
// leader asked for a pass, which assigns it. Use it when a shard ended, or
// for a graceful hand-off: after StopTaking (a shutdown) the lease is
// handed to the live worker with the fewest leases instead, which takes
// it up at its next poll. A lease the leader moved (OnHandOver) is handed
// over to its next owner. It fails with ErrLeaseLost if the
// lease is not held (any more).
func (c *Coordinator) Release(ctx context.Context, key string) error {
	h := c.heldLease(key)
	if h == nil {
		return fmt.Errorf("release lease %q: %w", key, ErrLeaseLost)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gone {
		return fmt.Errorf("release lease %q: %w", key, ErrLeaseLost)
	}
	return c.releaseLocked(ctx, h)
}

// releaseLocked releases (or hands over) a held lease and drops it. h.mu
// is held.
func (c *Coordinator) releaseLocked(ctx context.Context, h *heldLease) error {
	key := h.lease.Key
	var err error
	to := ""
	if !h.handingOver && !h.lease.Finished() && c.stopping() {
		to = c.receiver(ctx)
	}
	if to != "" {
		if err = c.transferHeld(ctx, h, to); err != nil && !errors.Is(err, ErrConflict) {
			c.log.Warn("handing a lease to another worker failed; releasing it", zap.String("lease", key), zap.String("to", to), zap.Error(err))
			to = ""
		}
	}
	if to == "" {
		err = c.releaseHeld(ctx, h)
	}
	if err != nil && !errors.Is(err, ErrConflict) {
		return fmt.Errorf("release lease %q: %w", key, err)
	}
	h.drop()
	c.mu.Lock()
	if c.held[key] == h {
		delete(c.held, key)
	}
	n := len(c.held)
	c.mu.Unlock()
	c.metrics.held.Set(float64(n))
	if err != nil { // lost before it could be released
		c.metrics.lost.Inc()
		return fmt.Errorf("release lease %q: %w", key, ErrLeaseLost)
	}
	switch {
	case h.handingOver:
		c.metrics.handedOver.Inc()
		c.log.Info("lease handed over", zap.String("lease", key), zap.String("to", h.lease.Owner))
		c.notify(ctx, []string{h.lease.Owner}, false)
	case to != "":
		c.metrics.handedOver.Inc()
		c.log.Info("lease handed to another worker on shutdown", zap.String("lease", key), zap.String("to", to))
	default:
		c.metrics.released.Inc()
		c.log.Info("lease released", zap.String("lease", key))
		if !h.lease.Finished() {
			c.TriggerTake() // for the leader to assign it
		}
	}
	return nil
}

// releaseHeld writes the release of a held lease. A failed condition is
// re-read: unowned with the counter an earlier attempt of ours whose reply
// was lost would have produced (heldLease.ownWrite) means it took effect;
// this worker as owner with that counter means the counter moved through
// another write of ours, and the release is retried; otherwise the lease
// was lost (ErrConflict), also when the owner is this WorkerID (another
// process runs with it). Retryable errors are retried with backoff a
// few times; a fatal one is returned at once. h.mu is held.
func (c *Coordinator) releaseHeld(ctx context.Context, h *heldLease) error {
	for try := 1; ; try++ {
		start := c.now()
		_, err := c.cfg.Store.Release(ctx, h.lease)
		if err == nil {
			return nil
		}
		h.failed(err, start)
		c.countStoreError("release", err)
		if errors.Is(err, ErrConflict) {
			cur, gerr := c.get(ctx, h.lease.Key)
			switch {
			case errors.Is(gerr, ErrNotFound):
				return err
			case gerr != nil:
				err = gerr // cannot tell: retry the release if the read may pass
			case h.handingOver && cur.CheckpointOwner == "" && cur.Owner == h.lease.Owner && h.ownWrite(cur):
				return nil // handed over by an attempt whose reply was lost
			case h.handingOver && cur.CheckpointOwner == c.cfg.WorkerID && cur.Counter > h.lease.Counter:
				h.set(cur) // redirected to another next owner: hand it to that one
				if try < storeAttempts {
					continue
				}
				return err
			case h.handingOver:
				return err // taken by the next owner without waiting, or by another
			case cur.Owner == "" && h.ownWrite(cur):
				return nil
			case cur.Owner != c.cfg.WorkerID:
				return err
			case !h.ownWrite(cur):
				c.duplicateLocked(h, cur)
				return err
			default:
				h.adopt(cur) // the counter moved through a write of ours: release on it
				if try < storeAttempts {
					continue
				}
				return err
			}
		}
		if try >= storeAttempts || !retryable(err) || backoff.Sleep(ctx, c.retry.Delay(try)) != nil {
			return err
		}
	}
}

// ReleaseAll stops taking (as StopTaking), hands every held lease to
// another live worker (or releases it when there is none), concurrently,
// and gives up leading the fleet. Leases already lost are skipped; other failures are joined
// into the error.
func (c *Coordinator) ReleaseAll(ctx context.Context) error {
	c.StopTaking()
	defer c.resign(ctx)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, c.cfg.MaxConcurrentWrites)
	)
	for _, l := range c.Held() {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := c.Release(ctx, l.Key); err != nil && !errors.Is(err, ErrLeaseLost) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := c.passOnUnheld(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c *Coordinator) countStoreError(op string, err error) {
	c.metrics.storeErrors.WithLabelValues(op, errorKind(err)).Inc()
}

// eventQueue delivers callbacks in order on one goroutine without making
// the coordinator wait for them.
type eventQueue struct {
	mu      sync.Mutex
	pending []func()
	wake    chan struct{}
	once    sync.Once
}

func (q *eventQueue) init() { q.once.Do(func() { q.wake = make(chan struct{}, 1) }) }

func (q *eventQueue) push(fn func()) {
	q.init()
	q.mu.Lock()
	q.pending = append(q.pending, fn)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run delivers events until ctx ends, then delivers what is queued.
func (q *eventQueue) run(ctx context.Context) {
	q.init()
	for {
		q.mu.Lock()
		batch := q.pending
		q.pending = nil
		q.mu.Unlock()
		for _, fn := range batch {
			fn()
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			q.mu.Lock()
			batch := q.pending
			q.pending = nil
			q.mu.Unlock()
			for _, fn := range batch {
				fn()
			}
			return
		}
	}
}
