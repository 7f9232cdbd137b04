package kcl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/streamref"
	"github.com/kinesisgo/kinesis/lease"
)

// Errors of Run and of processor calls. Match them with errors.Is.
var (
	// ErrRunning is returned by Run when the worker is already running or
	// has run before: a Worker runs once.
	ErrRunning = errors.New("kcl: worker already ran")
	// ErrProcessorStuck is wrapped by the error Run returns when processor
	// calls did not return within AbortGrace of their context's
	// cancellation: the worker stopped without them, and released or gave
	// up their leases.
	ErrProcessorStuck = errors.New("kcl: processor calls did not return after their context was cancelled")
	// ErrProcessorPanic is wrapped by the error a processor method that
	// panicked is treated as having returned (see Config.OnProcessError).
	ErrProcessorPanic = errors.New("kcl: processor panicked")
)

// AbortGrace is how long shards get to return once their context is
// cancelled (an abort, or a graceful shutdown past its timeout) before the
// worker stops without them.
const AbortGrace = 2 * time.Second

// Worker consumes a stream: it shares the stream's shards with the other
// workers of the same application through the lease table, and runs one
// goroutine per shard it holds, which reads the shard and hands its records
// to the RecordProcessor. Create it with New, start it with Run.
type Worker struct {
	cfg    Config
	log    *zap.Logger
	met    *metrics
	api    KinesisAPI
	store  lease.Store
	coord  *lease.Coordinator
	syncer *lease.ShardSyncer
	stream streamref.Ref
	// Under RetrievalFanOut: the calls that register the consumer, the
	// consumer's ARN (set during startup), how shards subscribe, and the
	// fan-out metrics.
	consumers   ConsumerAPI
	consumerARN string
	subscribe   subscribeFunc
	fmet        *fanOutMetrics
	// processRetry spaces the retries of failed processor calls,
	// infraRetry those of the worker's own lease table writes.
	processRetry, infraRetry backoff.Policy

	ran          atomic.Bool
	done         chan struct{} // closed when Run returns
	shutdownReq  chan struct{} // closed by Shutdown
	shutdownOnce sync.Once
	shutdownCtx  context.Context // Shutdown's context; set before shutdownReq is closed
	failOnce     sync.Once
	failed       chan struct{} // closed by fail
	failErr      error         // set before failed is closed
	abortGrace   time.Duration // AbortGrace; tests shorten it

	mu       sync.Mutex
	runCtx   context.Context // parent of the shards' contexts while running
	stopping bool
	shards   map[string]*shardWorker
	restart  map[string]lease.Lease // acquired again while the previous goroutine still ran
	shardWG  sync.WaitGroup
	ended    map[string]bool // shards this process processed to SHARD_END
	endedCh  chan struct{}   // closed and replaced when a shard ends
}

// New checks cfg and returns a worker that has not started. Clients left
// nil in cfg are built from the standard AWS config chain.
func New(cfg Config) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	stream, err := streamref.Parse(cfg.Stream)
	if err != nil {
		return nil, invalid("Stream: %v", err) // checked by Validate
	}
	met := newMetrics(cfg.Metrics)
	w := &Worker{
		cfg:          cfg,
		log:          cfg.Logger.With(zap.String("worker", cfg.WorkerID)),
		met:          met,
		api:          cfg.Kinesis,
		store:        cfg.LeaseStore,
		stream:       stream,
		processRetry: backoff.Policy{Base: cfg.ProcessBackoffBase, Max: cfg.ProcessBackoffMax},
		infraRetry:   backoff.Policy{Base: cfg.Retrieval.BackoffBase, Max: cfg.Retrieval.BackoffMax},
		done:         make(chan struct{}),
		shutdownReq:  make(chan struct{}),
		failed:       make(chan struct{}),
		abortGrace:   AbortGrace,
		shards:       make(map[string]*shardWorker),
		restart:      make(map[string]lease.Lease),
		ended:        make(map[string]bool),
		endedCh:      make(chan struct{}),
	}
	if w.api == nil || (w.store == nil && cfg.DynamoDB == nil) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		awsCfg, err := config.LoadDefaultConfig(ctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("kcl: load AWS config: %w", err)
		}
		kc, dc := newClients(awsCfg)
		if w.api == nil {
			w.api = kc
		}
		if w.store == nil && cfg.DynamoDB == nil {
			cfg.DynamoDB = dc
		}
	}
	if cfg.Retrieval.Mode == RetrievalFanOut {
		fa, ok1 := w.api.(FanOutAPI)
		ca, ok2 := w.api.(ConsumerAPI)
		if !ok1 || !ok2 {
			return nil, invalid("Retrieval.Mode RetrievalFanOut needs a Kinesis client with SubscribeToShard, DescribeStreamSummary, DescribeStreamConsumer and RegisterStreamConsumer; %T lacks some", w.api)
		}
		w.consumers, w.subscribe = ca, sdkSubscribe(fa)
		w.fmet = newFanOutMetrics(cfg.Metrics)
	}
	if w.store == nil {
		w.store, err = newDynamoDBStore(cfg)
		if err != nil {
			return nil, err
		}
	}
	lc := cfg.leaseConfig(w.store)
	lc.OnAcquired, lc.OnLost, lc.OnHandOver = w.acquired, w.lost, w.handOver
	lc.Throughput = w.throughput
	if w.coord, err = lease.NewCoordinator(lc); err != nil {
		return nil, fmt.Errorf("kcl: lease settings: %w", err)
	}
	sc := lease.ShardSyncConfig{
		Store: w.store, Kinesis: w.api, Stream: stream.String(),
		InitialPosition: cfg.InitialPosition, InitialTimestamp: cfg.InitialTimestamp,
		Interval: cfg.ShardSyncInterval, Leader: w.coord.Leading, Logger: cfg.Logger, Metrics: cfg.Metrics,
	}
	if w.syncer, err = lease.NewShardSyncer(sc); err != nil {
		return nil, fmt.Errorf("kcl: shard sync settings: %w", err)
	}
	return w, nil
}

// newClients builds the Kinesis and DynamoDB clients of a worker whose
// Config leaves them nil. The SDK's own retries are off: the worker retries
// failed Kinesis reads with backoff, the lease layer its lease table
// writes, and both retrying would multiply the attempts.
func newClients(awsCfg aws.Config) (*kinesis.Client, *dynamodb.Client) {
	kc := kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} })
	dc := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.Retryer = aws.NopRetryer{} })
	return kc, dc
}

// WorkerID returns the ID this worker writes as owner in the lease table.
func (w *Worker) WorkerID() string { return w.cfg.WorkerID }

// Shards returns the IDs of the shards this worker holds a lease on and
// processes (or waits to process, until their parents end), sorted.
func (w *Worker) Shards() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Sorted(maps.Keys(w.shards))
}

// Run consumes the stream until ctx is cancelled or Shutdown is called,
// and returns once every goroutine it started has ended. When ctx is
// cancelled the worker shuts down gracefully (as Shutdown, within
// ShutdownTimeout) unless AbortOnCancel is set. It returns nil after a
// shutdown, or the error that kept it from running (the stream does not
// exist, the lease table could not be created, the RetrievalFanOut
// consumer is being deleted (ErrConsumerNotActive) or could not be
// registered), or that stopped it (the
// stream was deleted: the error wraps Kinesis's ResourceNotFoundException).
// Processor calls that ignore their cancelled context are waited for
// AbortGrace only: Run then returns an error wrapping ErrProcessorStuck,
// naming their shards, and leaves their goroutines behind, not their
// leases (released after a graceful shutdown, no longer renewed after an
// abort).
func (w *Worker) Run(ctx context.Context) error {
	if !w.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer close(w.done)
	// Startup (the lease table, the first shard sync, the fan-out
	// consumer) ends early on
	// Shutdown as well as when ctx ends.
	startCtx, endStart := context.WithCancel(ctx)
	watching := make(chan struct{})
	go func() {
		defer close(watching)
		select {
		case <-w.shutdownReq:
			endStart()
		case <-startCtx.Done():
		}
	}()
	err := w.start(startCtx)
	if err == nil && w.consumers != nil && startCtx.Err() == nil {
		err = w.startFanOut(startCtx)
	}
	stopped := startCtx.Err() != nil
	endStart()
	<-watching
	switch {
	case err != nil:
		return err
	case stopped:
		w.log.Info("worker stopped during startup")
		return nil
	}

	// The shards and the lease layer run on contexts of their own, so
	// that a cancelled ctx can still be followed by a graceful shutdown.
	runCtx, abort := context.WithCancelCause(context.WithoutCancel(ctx))
	defer abort(nil)
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	w.mu.Lock()
	w.runCtx = runCtx
	w.mu.Unlock()

	var bg sync.WaitGroup
	bg.Add(2)
	go func() { defer bg.Done(); _ = w.coord.Run(bgCtx) }()
	go func() {
		defer bg.Done()
		if err := w.syncer.Run(bgCtx); err != nil {
			w.fail(fmt.Errorf("kcl: %w", err))
		}
	}()
	w.log.Info("worker started", zap.String("stream", w.stream.String()), zap.String("app", w.cfg.App))

	var graceful context.Context
	select {
	case <-ctx.Done():
		if !w.cfg.AbortOnCancel {
			var cancel context.CancelFunc
			graceful, cancel = context.WithTimeout(context.WithoutCancel(ctx), w.cfg.ShutdownTimeout)
			defer cancel()
		}
	case <-w.shutdownReq:
		graceful = w.shutdownCtx
	case <-w.failed:
		w.log.Error("worker stopping", zap.Error(w.failErr))
	}
	var stuck []string
	if graceful != nil {
		stuck = w.gracefulStop(graceful, abort)
	} else {
		w.log.Info("worker aborted; leases are left to expire")
		w.stopShards()
		abort(errAborted)
		stuck = w.waitShards(w.shardsDone(), w.abortGrace)
	}
	stopBackground()
	bg.Wait()
	if len(stuck) > 0 {
		w.log.Error("worker stopped; processor calls of these shards ignored their cancelled context and were left running", zap.Strings("shards", stuck))
		return fmt.Errorf("%w: shards %s", ErrProcessorStuck, strings.Join(stuck, ", "))
	}
	w.log.Info("worker stopped")
	select {
	case <-w.failed:
		return w.failErr
	default:
		return nil
	}
}

// fail stops the worker for a condition it cannot recover from (the
// stream was deleted): Run stops every shard, as an abort does, and
// returns err. Only the first error is kept.
func (w *Worker) fail(err error) {
	w.failOnce.Do(func() {
		w.failErr = err
		close(w.failed)
	})
}

// shardsDone returns a channel closed once every shard goroutine has ended.
func (w *Worker) shardsDone() <-chan struct{} {
	all := make(chan struct{})
	go func() { w.shardWG.Wait(); close(all) }()
	return all
}

// waitShards waits at most d for all (from shardsDone) to close, and
// returns the shards still running then, sorted.
func (w *Worker) waitShards(all <-chan struct{}, d time.Duration) []string {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-all:
		return nil
	case <-t.C:
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	stuck := make([]string, 0, len(w.shards))
	for id := range w.shards {
		stuck = append(stuck, id)
	}
	slices.Sort(stuck)
	return stuck
}

// start makes sure the lease table exists and creates the leases of the
// stream's shards, so that the first taker pass finds them. It fails when
// the table cannot be created or the stream does not exist; it returns nil
// when ctx ends first. The lease layer retries the calls that fail with a
// retryable error.
func (w *Worker) start(ctx context.Context) error {
	if err := w.store.EnsureTable(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("kcl: lease table: %w", err)
	}
	if err := w.syncer.Sync(ctx); err != nil && ctx.Err() == nil {
		var nf *kintypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			return fmt.Errorf("kcl: stream %s: %w", w.stream, err)
		}
		w.log.Warn("initial shard sync failed; retrying in the background", zap.Error(err))
	}
	return nil
}

// startFanOut registers the stream consumer of RetrievalFanOut unless it
// exists, and waits until it is ACTIVE. It returns nil when ctx ends first.
func (w *Worker) startFanOut(ctx context.Context) error {
	arn, err := ensureConsumer(ctx, w.consumers, w.stream, w.cfg.Retrieval.ConsumerName)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	w.consumerARN = arn
	w.log.Info("reading with enhanced fan-out", zap.String("consumer", arn))
	return nil
}

// Shutdown stops the worker gracefully: it takes no more leases, lets each
// shard finish its current batch, calls ShutdownRequested with a live
// checkpointer, releases the leases in the lease table so that other
// workers take them at their next pass, and waits for Run to return. A
// worker still starting (creating the lease table, syncing the shards)
// stops at once. When ctx ends first, the shards still running are stopped
// without ShutdownRequested (their leases expire after FailoverTime) and
// Shutdown returns ctx's error by ctx's deadline; Run returns once the
// calls it has in flight return. Shutdown of a worker that is not running
// returns nil.
func (w *Worker) Shutdown(ctx context.Context) error {
	if !w.ran.Load() {
		return nil
	}
	w.shutdownOnce.Do(func() {
		w.shutdownCtx = ctx
		close(w.shutdownReq)
	})
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	return ctx.Err()
}

// gracefulStop hands the worker's shards back. When ctx ends first the
// shards still running are aborted; those still running AbortGrace later
// are returned, and their leases released all the same (their processors
// can no longer checkpoint: the leases are no longer held).
func (w *Worker) gracefulStop(ctx context.Context, abort context.CancelCauseFunc) []string {
	w.log.Info("worker shutting down gracefully")
	w.coord.StopTaking()
	for _, s := range w.stopShards() {
		s.requestShutdown(ctx)
	}
	all := w.shardsDone()
	select {
	case <-all:
	case <-ctx.Done():
		w.log.Warn("graceful shutdown timed out; stopping the remaining shards", zap.Error(ctx.Err()))
		abort(errAborted)
		stuck := w.waitShards(all, w.abortGrace)
		if len(stuck) > 0 {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
			defer cancel()
			if err := w.coord.ReleaseAll(rctx); err != nil {
				w.log.Warn("releasing the leases of stuck shards failed; they expire after FailoverTime", zap.Error(err))
			}
		}
		return stuck
	}
	// Leases held without a running shard (stopped by StopShard, or taken
	// while shutting down) are released too.
	if err := w.coord.ReleaseAll(ctx); err != nil {
		w.log.Warn("releasing leases failed; they expire after FailoverTime", zap.Error(err))
	}
	return nil
}

// stopShards marks the worker as stopping, so that no more shards start,
// and returns the running ones.
func (w *Worker) stopShards() []*shardWorker {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopping = true
	out := make([]*shardWorker, 0, len(w.shards))
	for _, s := range w.shards {
		out = append(out, s)
	}
	return out
}

// acquired is the coordinator's OnAcquired: it starts the shard.
func (w *Worker) acquired(l lease.Lease) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopping || w.runCtx == nil {
		return // released with the others at shutdown
	}
	if _, ok := w.shards[l.Key]; ok {
		// Lost and taken again before the previous goroutine ended: start
		// once it has.
		w.restart[l.Key] = l
		return
	}
	w.startLocked(l)
}

// startLocked starts the goroutine of a shard. w.mu is held.
func (w *Worker) startLocked(l lease.Lease) {
	ctx, cancel := context.WithCancelCause(w.runCtx)
	s := &shardWorker{
		w: w, id: l.Key, lease: l, cancel: cancel,
		log:      w.log.With(zap.String("shard", l.Key)),
		shutdown: make(chan struct{}),
		done:     make(chan struct{}),
	}
	w.shards[l.Key] = s
	w.met.shards.Inc()
	w.shardWG.Add(1)
	go func() {
		defer w.shardWG.Done()
		s.run(ctx)
		cancel(nil)
		w.met.shards.Dec()
		w.met.millisBehind.DeleteLabelValues(s.id)
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.shards[s.id] == s {
			delete(w.shards, s.id)
		}
		if next, ok := w.restart[s.id]; ok {
			delete(w.restart, s.id)
			if !w.stopping {
				w.startLocked(next)
			}
		}
	}()
}

// lost is the coordinator's OnLost: it stops the shard, and drops a start
// deferred until the shard's previous processing ends. The coordinator may
// report the loss of a holding after it reported the next holding of the
// same lease acquired (the lease dropped, released by its thief and taken
// again before the loss was queued): a loss stops only the processing of
// that holding or an earlier one, and drops only a deferred start of that
// holding or an earlier one. Counters only grow, so a later holding has a
// higher counter than every state of an earlier one.
func (w *Worker) lost(l lease.Lease) {
	w.mu.Lock()
	s := w.shards[l.Key]
	if next, ok := w.restart[l.Key]; ok && next.Counter <= l.Counter {
		delete(w.restart, l.Key)
	}
	w.mu.Unlock()
	if s != nil && s.lease.Counter <= l.Counter {
		s.leaseLost()
	}
}

// handOver is the coordinator's OnHandOver: another worker asked for the
// lease to balance the load. The shard stops after its batch in flight, as
// in a graceful shutdown (ShutdownRequested, with a live checkpointer, then
// the release), and the release hands the lease to that worker, which
// starts from the last checkpoint: a move to balance the load delivers no
// record twice. ShutdownRequested gets FailoverTime at most: the next owner
// takes the lease without the hand-over once its counter has not moved for
// that long.
func (w *Worker) handOver(l lease.Lease) {
	w.mu.Lock()
	s := w.shards[l.Key]
	runCtx := w.runCtx
	w.mu.Unlock()
	if runCtx == nil {
		return
	}
	if s == nil { // not processed here (stopped by StopShard): hand it over now
		go func() {
			ctx, cancel := context.WithTimeout(runCtx, releaseTimeout)
			defer cancel()
			if err := w.coord.Release(ctx, l.Key); err != nil && !errors.Is(err, lease.ErrLeaseLost) {
				w.log.Warn("handing a lease over failed; the next owner takes it after FailoverTime", zap.String("shard", l.Key), zap.Error(err))
			}
		}()
		return
	}
	ctx, cancel := context.WithTimeout(runCtx, min(w.cfg.ShutdownTimeout, w.cfg.Lease.FailoverTime))
	go func() { <-s.done; cancel() }()
	s.log.Info("another worker asked for the lease; handing it over after the batch in flight", zap.String("to", l.Owner))
	s.requestShutdown(ctx)
}

// throughput is the coordinator's Throughput: the rate the shard was read
// at since the previous call (a renewal interval), in KiB per second; false
// for a shard not processed here or measured for the first time.
func (w *Worker) throughput(key string) (float64, bool) {
	w.mu.Lock()
	s := w.shards[key]
	w.mu.Unlock()
	if s == nil {
		return 0, false
	}
	return s.rate(time.Now())
}

// notifyEnded tells the shards of this process waiting for shardID that it
// reached SHARD_END.
func (w *Worker) notifyEnded(shardID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended[shardID] = true
	close(w.endedCh)
	w.endedCh = make(chan struct{})
}

// endedSignal returns a channel closed when the next shard ends.
func (w *Worker) endedSignal() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.endedCh
}

func (w *Worker) hasEnded(shardID string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ended[shardID]
}
