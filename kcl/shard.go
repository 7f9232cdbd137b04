package kcl

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/lease"
)

// Causes for the cancellation of a shard's processing context.
var (
	errLeaseLost = fmt.Errorf("kcl: shard processing stopped: %w", lease.ErrLeaseLost)
	errAborted   = errors.New("kcl: worker aborted")
)

// shardWorker processes one shard whose lease the worker holds: it waits
// for the shard's parents, reads the shard, delivers batches to the
// processor, and ends with the shard's end, the loss of its lease, or a
// shutdown.
type shardWorker struct {
	w     *Worker
	id    string
	lease lease.Lease
	log   *zap.Logger

	cancel       context.CancelCauseFunc
	shutdown     chan struct{}   // closed to ask for a graceful stop
	shutdownCtx  context.Context // bounds the graceful stop; set before shutdown is closed
	shutdownOnce sync.Once
	lostOnce     sync.Once
	lost         atomic.Bool   // set when the lease was lost; checkpoints fail from then on
	done         chan struct{} // closed when run returns

	// bytesRead counts the bytes of the records read; rate turns it into
	// the throughput written to the lease at each renewal.
	bytesRead atomic.Int64
	rateMu    sync.Mutex
	rateBytes int64     // bytesRead at the previous rate call; guarded by rateMu
	rateAt    time.Time // when that was; guarded by rateMu
	rateAvg   float64   // the smoothed rate, KiB/s; guarded by rateMu
	rateKnown bool      // rateAvg holds a measurement; guarded by rateMu
}

// requestShutdown asks the shard to stop after its current batch, call
// ShutdownRequested and release its lease, all within ctx.
func (s *shardWorker) requestShutdown(ctx context.Context) {
	s.shutdownOnce.Do(func() {
		s.shutdownCtx = ctx
		close(s.shutdown)
	})
}

// shutdownContext is the context for ShutdownRequested and the release
// that follows: the graceful shutdown's, which the cancellation of the
// shard's own context (when the shutdown runs out of time) also ends.
func (s *shardWorker) shutdownContext(ctx context.Context) (context.Context, context.CancelFunc) {
	sctx, cancel := context.WithCancel(s.shutdownCtx)
	stop := context.AfterFunc(ctx, cancel)
	return sctx, func() { stop(); cancel() }
}

// rateSmoothing is the weight of each new measurement in the shard's
// read rate (an exponentially weighted moving average over about four
// renewal intervals): the rates the balancing plan compares must not
// follow every burst, or leases would move back and forth.
const rateSmoothing = 0.25

// rate returns the shard's read rate in KiB per second: the bytes read
// since the previous call, smoothed, starting from the rate its previous
// holder wrote to the lease (a shard just taken over reads its backlog
// first). false at the first call of a lease never measured.
func (s *shardWorker) rate(now time.Time) (float64, bool) {
	n := s.bytesRead.Load()
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	lastBytes, lastAt := s.rateBytes, s.rateAt
	s.rateBytes, s.rateAt = n, now
	if lastAt.IsZero() || !now.After(lastAt) {
		if s.lease.ThroughputKnown {
			s.rateAvg, s.rateKnown = s.lease.ThroughputKBps, true
		}
		return s.rateAvg, s.rateKnown
	}
	sample := float64(n-lastBytes) / 1024 / now.Sub(lastAt).Seconds()
	if !s.rateKnown {
		s.rateAvg, s.rateKnown = sample, true
	} else {
		s.rateAvg += rateSmoothing * (sample - s.rateAvg)
	}
	return s.rateAvg, true
}

// leaseLost stops the shard at once; LeaseLost is called.
func (s *shardWorker) leaseLost() {
	s.lostOnce.Do(func() {
		s.lost.Store(true)
		s.cancel(errLeaseLost)
	})
}

// outcome is how a shard's processing ended.
type outcome int

const (
	outcomeAborted  outcome = iota // worker aborted: no processor call, lease kept
	outcomeLost                    // lease lost: LeaseLost called
	outcomeShutdown                // graceful: ShutdownRequested called, lease released
	outcomeEnded                   // shard end: SHARD_END checkpointed, lease released
	outcomeStopped                 // StopShard after processor errors: lease kept, not read
)

func (s *shardWorker) run(ctx context.Context) {
	defer close(s.done)
	o := s.process(ctx)
	s.log.Debug("shard processing ended", zap.Int("outcome", int(o)))
}

// process runs the shard and returns how it ended.
func (s *shardWorker) process(ctx context.Context) outcome {
	w := s.w
	if s.lease.Finished() {
		// Processed to its end already: nothing to read.
		w.notifyEnded(s.id)
		s.release(ctx)
		return outcomeEnded
	}
	if !s.waitForParents(ctx) {
		return s.stopBeforeStart(ctx)
	}
	proc := w.cfg.Processor
	if w.cfg.NewProcessor != nil {
		proc = w.cfg.NewProcessor(s.id)
	}
	l := s.lease
	cp := newCheckpointer(w.coord, l, &s.lost)

	start, resume := s.startPosition(l)
	init := &InitializeInput{
		ShardID: s.id, Checkpoint: l.Checkpoint, CheckpointSubSequenceNumber: l.CheckpointSubSequence,
		PendingCheckpoint: l.PendingCheckpoint, PendingCheckpointSubSequenceNumber: l.PendingCheckpointSubSequence,
	}
	if o, ok := s.retryCall(ctx, "Initialize", func() error { return proc.Initialize(ctx, init) }); !ok {
		return s.finish(ctx, proc, cp, o)
	}

	d := &deaggregator{shardID: s.id, outside: func(n int) { w.met.outsideHashRange.Add(float64(n)) },
		undecoded: w.met.compressedUndecoded.Inc}
	if resume != nil {
		d.resumeSeq, d.resumeSub = resume, l.CheckpointSubSequence
	}
	if r, err := hashkey.ParseRange(l.StartingHashKey, l.EndingHashKey); err == nil {
		d.hashRange = &r
	}

	pctx, stopPoller := context.WithCancel(ctx)
	batches := make(chan fetched)
	p := w.newReader(s.id, start, s.log)
	var pollerDone sync.WaitGroup
	pollerDone.Add(1)
	go func() { defer pollerDone.Done(); p.run(pctx, batches) }()
	// The poller stops before the closing processor call.
	finish := func(o outcome) outcome {
		stopPoller()
		pollerDone.Wait()
		return s.finish(ctx, proc, cp, o)
	}
	defer stopPoller()

	sizeHint := 0
	for {
		var f fetched
		var ok bool
		select {
		case <-ctx.Done():
			return finish(s.cancelOutcome(ctx))
		case <-s.shutdown:
			return finish(outcomeShutdown)
		case f, ok = <-batches:
			if !ok {
				return finish(s.cancelOutcome(ctx))
			}
			s.bytesRead.Add(int64(f.bytes))
		}
		// A stop decided while the batch waited takes priority over it:
		// the select above picks any ready case, and no batch is handed
		// over once the lease is lost or a shutdown has begun.
		if o, stop := s.stopRequested(ctx); stop {
			return finish(o)
		}
		// A new slice per batch (the processor may keep it), sized after
		// the previous batch so that aggregated records rarely regrow it.
		// Data decompressed from compressed containers counts against
		// PrefetchBytes: past it, the rest of the fetched records goes in
		// another batch, so that a batch of small compressed records does
		// not claim many times the bound.
		for rest := f.records; len(rest) > 0; {
			var records []Record
			records, rest = d.appendRecordsUpTo(make([]Record, 0, max(len(rest), sizeHint)), rest, w.cfg.Retrieval.PrefetchBytes)
			sizeHint = len(records)
			if len(records) > 0 {
				b := &Batch{ShardID: s.id, Records: records, MillisBehindLatest: f.millisBehindLatest, Checkpointer: cp}
				if o, ok := s.deliver(ctx, proc, b); !ok {
					return finish(o)
				}
			}
			if len(rest) > 0 {
				if o, stop := s.stopRequested(ctx); stop {
					return finish(o)
				}
			}
		}
		if f.gone != nil {
			w.fail(f.gone)
			return finish(outcomeAborted)
		}
		p.done(f.seqNo)
		if f.end {
			return finish(s.shardEnd(ctx, proc, cp, f.children, f.expired))
		}
	}
}

// stopRequested reports whether the shard must stop before its next
// processor call (the lease lost, the worker aborted, or a shutdown
// requested), and with which outcome.
func (s *shardWorker) stopRequested(ctx context.Context) (outcome, bool) {
	if ctx.Err() != nil {
		return s.cancelOutcome(ctx), true
	}
	select {
	case <-s.shutdown:
		return outcomeShutdown, true
	default:
		return 0, false
	}
}

// cancelOutcome tells why ctx was cancelled.
func (s *shardWorker) cancelOutcome(ctx context.Context) outcome {
	if errors.Is(context.Cause(ctx), errLeaseLost) {
		return outcomeLost
	}
	return outcomeAborted
}

// deliver hands b to the processor, applying the error policy. ok is false
// when the shard must stop (with outcome o).
func (s *shardWorker) deliver(ctx context.Context, proc RecordProcessor, b *Batch) (o outcome, ok bool) {
	w := s.w
	last := b.Records[len(b.Records)-1]
	lastPos := checkpoint.SequenceNumber{Sequence: last.SequenceNumber, SubSequence: last.SubSequenceNumber}
	b.Checkpointer.delivered(lastPos)
	for attempt := 1; ; attempt++ {
		started := time.Now()
		err := s.guard("ProcessRecords", func() error { return proc.ProcessRecords(ctx, b) })
		w.met.processTime.Observe(time.Since(started).Seconds())
		if err == nil {
			w.met.records.Add(float64(len(b.Records)))
			n := 0
			for i := range b.Records {
				n += len(b.Records[i].Data)
			}
			w.met.bytes.Add(float64(n))
			b.Checkpointer.done(lastPos)
			return 0, true
		}
		if ctx.Err() != nil {
			return s.cancelOutcome(ctx), false
		}
		if errors.Is(err, lease.ErrLeaseLost) {
			s.leaseLost()
			return outcomeLost, false
		}
		w.met.processErrors.Inc()
		first := b.Records[0]
		fields := []zap.Field{zap.Int("attempt", attempt), zap.Int("records", len(b.Records)),
			zap.String("first_sequence", first.SequenceNumber), zap.Uint64("first_sub_sequence", first.SubSequenceNumber),
			zap.String("last_sequence", last.SequenceNumber), zap.Uint64("last_sub_sequence", last.SubSequenceNumber), zap.Error(err)}
		switch w.cfg.OnProcessError {
		case StopShard:
			s.log.Error("ProcessRecords failed; stopping the shard (its lease is kept until shutdown)", fields...)
			return outcomeStopped, false
		case RetryThenSkip:
			if attempt > w.cfg.retries() {
				w.met.skipped.Add(float64(len(b.Records)))
				s.log.Error("ProcessRecords failed; skipping the batch after its retries", fields...)
				b.Checkpointer.done(lastPos)
				return 0, true
			}
		}
		s.log.Warn("ProcessRecords failed; retrying the batch", fields...)
		if !s.backoff(ctx, attempt) {
			return s.stopOutcome(ctx), false
		}
	}
}

// guard calls the processor method fn. A panic in it is recovered, logged
// with its stack, counted (kinesis_kcl_processor_panics_total) and returned
// as an error wrapping ErrProcessorPanic, which OnProcessError then
// handles as any other failure of the method: one shard's bad record does
// not bring the process (and every other shard) down.
func (s *shardWorker) guard(method string, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.w.met.processorPanics.Inc()
			s.log.Error(method+" panicked", zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			err = fmt.Errorf("%s: %w: %v", method, ErrProcessorPanic, r)
		}
	}()
	return fn()
}

// retryCall calls fn until it returns nil, backing off between attempts.
// StopShard stops the shard on the first error. ok is false when the shard
// must stop (with outcome o).
func (s *shardWorker) retryCall(ctx context.Context, name string, fn func() error) (o outcome, ok bool) {
	for attempt := 1; ; attempt++ {
		err := s.guard(name, fn)
		if err == nil {
			return 0, true
		}
		if ctx.Err() != nil {
			return s.cancelOutcome(ctx), false
		}
		if errors.Is(err, lease.ErrLeaseLost) {
			s.leaseLost()
			return outcomeLost, false
		}
		s.w.met.processErrors.Inc()
		if s.w.cfg.OnProcessError == StopShard {
			s.log.Error(name+" failed; stopping the shard (its lease is kept until shutdown)", zap.Error(err))
			return outcomeStopped, false
		}
		s.log.Warn(name+" failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
		if !s.backoff(ctx, attempt) {
			return s.stopOutcome(ctx), false
		}
	}
}

// backoff waits before a processor retry; false when the shard is asked to
// stop meanwhile.
func (s *shardWorker) backoff(ctx context.Context, attempt int) bool {
	t := time.NewTimer(s.w.processRetry.Delay(attempt))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.shutdown:
		return false
	}
}

func (s *shardWorker) stopOutcome(ctx context.Context) outcome {
	if ctx.Err() != nil {
		return s.cancelOutcome(ctx)
	}
	return outcomeShutdown
}

// shardEnd handles the end of a closed shard: child leases are created at
// once, ShardEnded is called, SHARD_END is checkpointed, and workers of
// this process waiting for the shard are told. A shard that aged out of
// the retention period (expired) ends the same way, its unread records
// being gone, so that its children start.
func (s *shardWorker) shardEnd(ctx context.Context, proc RecordProcessor, cp *Checkpointer, children []types.ChildShard, expired bool) outcome {
	w := s.w
	childIDs := make([]string, 0, len(children))
	for _, c := range children {
		childIDs = append(childIDs, aws.ToString(c.ShardId))
	}
	if o, ok := s.retryInfra(ctx, "create child leases", w.met.childLeaseErrors, func() error { return lease.CreateChildLeases(ctx, w.store, children) }); !ok {
		return o
	}
	// The parent names its children, as the Java KCL records them.
	if len(childIDs) > 0 {
		if o, ok := s.retryInfra(ctx, "record child shards", w.met.checkpointErrors, func() error {
			_, err := w.coord.Update(ctx, s.id, func(l *lease.Lease) error {
				l.ChildShardIDs = childIDs
				return nil
			})
			return err
		}); !ok {
			return o
		}
	}
	cp.delivered(checkpoint.ShardEnd.SequenceNumber())
	in := &ShardEndedInput{ShardID: s.id, Checkpointer: cp, Expired: expired}
	if o, ok := s.retryCall(ctx, "ShardEnded", func() error { return proc.ShardEnded(ctx, in) }); !ok {
		return o
	}
	if o, ok := s.retryInfra(ctx, "checkpoint SHARD_END", w.met.checkpointErrors, func() error { return cp.CheckpointAt(ctx, string(checkpoint.ShardEnd), 0) }); !ok {
		return o
	}
	if expired {
		w.met.shardsExpired.Inc()
		s.log.Warn("shard aged out of the stream's retention period before it was read to its end; its unread records are gone, it is ended and its children start",
			zap.Strings("children", childIDs))
	} else {
		w.met.shardsEnded.Inc()
		s.log.Info("shard ended", zap.Strings("children", childIDs))
	}
	w.notifyEnded(s.id)
	return outcomeEnded
}

// retryInfra retries a call to the lease table with backoff until it
// succeeds, the lease is lost, or the shard is stopped; failures count in
// failed.
func (s *shardWorker) retryInfra(ctx context.Context, name string, failed prometheus.Counter, fn func() error) (outcome, bool) {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil {
			return 0, true
		}
		if ctx.Err() != nil {
			return s.cancelOutcome(ctx), false
		}
		if errors.Is(err, lease.ErrLeaseLost) {
			s.leaseLost()
			return outcomeLost, false
		}
		failed.Inc()
		s.log.Warn(name+" failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
		if backoff.Sleep(ctx, s.w.infraRetry.Delay(attempt)) != nil {
			return s.cancelOutcome(ctx), false
		}
	}
}

// finish calls the processor's closing method for outcome o and releases
// the lease where o asks for it.
func (s *shardWorker) finish(ctx context.Context, proc RecordProcessor, cp *Checkpointer, o outcome) outcome {
	w := s.w
	switch o {
	case outcomeLost:
		w.met.leasesLost.Inc()
		s.log.Info("lease lost; shard processing stopped")
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.ShutdownTimeout)
		_ = s.guard("LeaseLost", func() error { proc.LeaseLost(lctx, &LeaseLostInput{ShardID: s.id}); return nil })
		cancel()
	case outcomeShutdown:
		sctx, cancel := s.shutdownContext(ctx)
		if err := s.guard("ShutdownRequested", func() error {
			return proc.ShutdownRequested(sctx, &ShutdownRequestedInput{ShardID: s.id, Checkpointer: cp})
		}); err != nil {
			s.log.Error("ShutdownRequested failed; releasing the lease anyway", zap.Error(err))
		}
		s.release(sctx)
		cancel()
	case outcomeEnded:
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.ShutdownTimeout)
		s.release(sctx)
		cancel()
		w.coord.TriggerTake()
	}
	return o
}

// stopBeforeStart ends a shard that stopped while waiting for its parents:
// no processor method was called, so none is.
func (s *shardWorker) stopBeforeStart(ctx context.Context) outcome {
	select {
	case <-s.shutdown:
		if ctx.Err() == nil {
			sctx, cancel := s.shutdownContext(ctx)
			s.release(sctx)
			cancel()
		}
		return outcomeShutdown
	default:
	}
	return s.cancelOutcome(ctx)
}

// releaseTimeout bounds the release of a lease, which gets a context of its
// own: a processor that used up the shutdown's time still hands its lease
// over at once.
const releaseTimeout = 2 * time.Second

func (s *shardWorker) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
	defer cancel()
	if err := s.w.coord.Release(ctx, s.id); err != nil && !errors.Is(err, lease.ErrLeaseLost) {
		s.log.Warn("releasing the lease failed; it expires after FailoverTime", zap.Error(err))
	}
}

// startPosition turns the lease's checkpoint into where reading starts,
// and the sequence number to skip through when resuming at a record.
func (s *shardWorker) startPosition(l lease.Lease) (startPosition, *big.Int) {
	switch l.Checkpoint {
	case string(checkpoint.TrimHorizon), "":
		return startPosition{kind: types.ShardIteratorTypeTrimHorizon}, nil
	case string(checkpoint.Latest):
		if !l.LatestTimestamp.IsZero() {
			// Not a new LATEST: the one the lease was pinned to when the
			// application first saw the shard, so that records written
			// while the lease moved are read.
			return startPosition{kind: types.ShardIteratorTypeAtTimestamp, timestamp: l.LatestTimestamp.Add(-s.w.cfg.ClockSkewMargin)}, nil
		}
		return startPosition{kind: types.ShardIteratorTypeLatest}, nil
	case string(checkpoint.AtTimestamp):
		return startPosition{kind: types.ShardIteratorTypeAtTimestamp, timestamp: s.w.cfg.InitialTimestamp}, nil
	}
	n, ok := new(big.Int).SetString(l.Checkpoint, 10)
	if !ok {
		s.log.Error("lease checkpoint is not a sequence number; reading from TRIM_HORIZON", zap.String("checkpoint", l.Checkpoint))
		return startPosition{kind: types.ShardIteratorTypeTrimHorizon}, nil
	}
	// AT the checkpointed record, so that the rest of an aggregated record
	// is read; the deaggregator skips what was checkpointed.
	return startPosition{kind: types.ShardIteratorTypeAtSequenceNumber, seq: l.Checkpoint}, n
}

// waitForParents blocks until every parent of the shard is at SHARD_END
// or done otherwise: its lease is gone and the stream no longer lists it
// (aged out), or the shard starts at LATEST or AT_TIMESTAMP (no leased
// ancestor, so its parents' records are not wanted). A parent without a
// lease that is still listed is waited for: a merge child is leased when
// its first parent ends, and the shard sync leases the other parent, which
// is read first. Parents ended in this process are noticed at once; others
// are polled in the lease table (and the stream's shard list) every
// ParentPollInterval. false when the shard is stopped first.
func (s *shardWorker) waitForParents(ctx context.Context) bool {
	w := s.w
	pending := slices.Clone(s.lease.ParentShardIDs)
	// A shard that started, or starts at LATEST or AT_TIMESTAMP, does not
	// wait for parents without a lease.
	fromStart := s.lease.Checkpoint == "" || s.lease.Checkpoint == string(checkpoint.TrimHorizon)
	for {
		signal := w.endedSignal() // before the checks, so no notice is missed
		rest := pending[:0]
		var listed map[string]bool // the stream's shards, listed once per round when needed
		for _, p := range pending {
			if w.hasEnded(p) {
				continue
			}
			l, err := w.store.Get(ctx, p)
			if errors.Is(err, lease.ErrNotFound) && fromStart && listed == nil {
				shards, lerr := listShards(ctx, w.api, w.stream)
				if lerr != nil {
					if ctx.Err() == nil {
						s.log.Warn("listing the stream's shards failed", zap.Error(lerr))
					}
					rest = append(rest, p)
					continue
				}
				listed = make(map[string]bool, len(shards))
				for _, sh := range shards {
					listed[aws.ToString(sh.ShardId)] = true
				}
			}
			switch {
			case errors.Is(err, lease.ErrNotFound) && (!fromStart || !listed[p]):
				continue // aged out of the stream, or not wanted
			case errors.Is(err, lease.ErrNotFound):
				// Still listed: its lease is to be created by the shard sync.
			case err == nil && l.Finished():
				continue
			case err != nil && ctx.Err() == nil:
				s.log.Warn("reading a parent lease failed", zap.String("parent", p), zap.Error(err))
			}
			rest = append(rest, p)
		}
		pending = rest
		if len(pending) == 0 {
			return true
		}
		s.log.Debug("waiting for parent shards", zap.Strings("parents", pending))
		t := time.NewTimer(w.cfg.ParentPollInterval)
		select {
		case <-signal:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		case <-s.shutdown:
			t.Stop()
			return false
		}
		t.Stop()
	}
}

// newReader returns the reader of a shard: a fan-out subscriber once the
// worker has its consumer, else a poller.
func (w *Worker) newReader(shardID string, start startPosition, log *zap.Logger) shardReader {
	if w.consumerARN != "" {
		return newSubscriber(w.subscribe, w.api, w.stream, w.consumerARN, shardID, start, w.cfg.Retrieval, log, w.met, w.fmet)
	}
	return newPoller(w.api, w.stream, shardID, start, w.cfg.Retrieval, log, w.met)
}
