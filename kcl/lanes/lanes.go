package lanes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/kcl"
	"github.com/kinesisgo/kinesis/lease"
)

// Factory makes the per-shard processors of a kcl.Worker: pass its
// NewProcessor method as kcl.Config.NewProcessor.
type Factory struct {
	cfg   Config
	met   *metrics
	retry backoff.Policy
}

// New returns a Factory for cfg, or the error of cfg.Validate.
func New(cfg Config) (*Factory, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Factory{cfg: cfg, met: newMetrics(cfg.Metrics),
		retry: backoff.Policy{Base: cfg.RetryBackoffBase, Max: cfg.RetryBackoffMax}}, nil
}

// NewProcessor returns the processor of one shard: a kcl.RecordProcessor
// that routes the shard's records to the lanes and checkpoints the
// watermark.
//
// ProcessRecords returns once the records are queued in their lanes
// (blocking first while Config.MaxInFlight records are held). The
// checkpoint is written whenever the watermark moves, one write at a
// time: it never passes a record not yet handled or stored by the
// destination. ShardEnded waits for the lanes to finish every record of
// the shard; ShutdownRequested (a graceful shutdown, or a hand-over to
// another worker) waits, no longer than its context, for the records up
// to the last one a lane has started, and leaves those queued after it to
// the next owner; both checkpoint the watermark. LeaseLost drops what the
// lanes hold.
func (f *Factory) NewProcessor(shardID string) kcl.RecordProcessor {
	return &shardProcessor{f: f, shardID: shardID, log: f.cfg.Logger.With(zap.String("shard", shardID))}
}

// errClosed ends the lanes of a shard once it was drained.
var errClosed = errors.New("lanes: shard processing closed")

// shardProcessor is the processor of one shard.
type shardProcessor struct {
	f       *Factory
	shardID string
	log     *zap.Logger

	wm       *watermark
	lanes    []*lane
	router   *router         // nil with one lane
	shardCtx context.Context // the shard's context, for the checkpoint writes
	ctx      context.Context // the lanes' context: the shard's, ended by cancel
	cancel   context.CancelCauseFunc
	running  sync.WaitGroup // the lanes and the checkpoint writer
	draining atomic.Bool    // set by ShardEnded and ShutdownRequested: batches stop waiting for BatchWindow
	cp       atomic.Pointer[kcl.Checkpointer]
	delivery uint64 // deliveries so far; ProcessRecords is never concurrent

	writeMu sync.Mutex
	written checkpoint.SequenceNumber // last checkpoint written; guarded by writeMu
}

// Initialize starts the lanes and the checkpoint writer, under ctx (the
// shard's context, which ends when the lease is lost or the worker is
// aborted).
func (s *shardProcessor) Initialize(ctx context.Context, _ *kcl.InitializeInput) error {
	if s.wm != nil {
		return nil
	}
	cfg := s.f.cfg
	s.wm = newWatermark()
	s.shardCtx = ctx
	s.ctx, s.cancel = context.WithCancelCause(ctx)
	context.AfterFunc(s.ctx, s.wm.wake)
	s.lanes = make([]*lane, cfg.Parallelism)
	if cfg.Parallelism > 1 {
		s.router = newRouter(cfg.Parallelism)
	}
	for i := range s.lanes {
		s.lanes[i] = &lane{sp: s, idx: i, met: s.f.met.lane(s.shardID, i), signal: make(chan struct{}, 1)}
	}
	s.running.Add(len(s.lanes) + 1)
	for _, l := range s.lanes {
		go func() { defer s.running.Done(); l.run() }()
	}
	go func() { defer s.running.Done(); s.writeCheckpoints() }()
	return nil
}

// ProcessRecords queues the records in their lanes.
func (s *shardProcessor) ProcessRecords(ctx context.Context, b *kcl.Batch) error {
	if s.wm == nil {
		return errors.New("lanes: ProcessRecords before Initialize")
	}
	s.cp.Store(b.Checkpointer)
	s.delivery++
	stop := context.AfterFunc(ctx, s.wm.wake)
	defer stop()
	stopped := func() bool { return ctx.Err() != nil || s.ctx.Err() != nil }
	// The batch is queued whole once fewer than MaxInFlight records are
	// held, each lane's part at once: ProcessRecords returns soon, so
	// that a shutdown or a hand-over is not held up behind a large batch,
	// and a lane's batch holds the lane's part of the delivery
	// (Config.BatchSize 0) rather than what was queued when it looked.
	s.wm.waitRoom(s.f.cfg.MaxInFlight, stopped)
	if err := s.ctx.Err(); err != nil {
		return context.Cause(s.ctx)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	per := make([][]item, len(s.lanes))
	for i := range b.Records {
		r := &b.Records[i]
		ord := s.wm.add(checkpoint.SequenceNumber{Sequence: r.SequenceNumber, SubSequence: r.SubSequenceNumber})
		l := 0
		if s.router != nil {
			l = s.router.assign(r.PartitionKey)
		}
		per[l] = append(per[l], item{rec: *r, ord: ord, delivery: s.delivery})
	}
	for l, items := range per {
		if len(items) > 0 {
			s.lanes[l].push(items)
		}
	}
	return nil
}

// LeaseLost drops what the lanes hold.
func (s *shardProcessor) LeaseLost(ctx context.Context, _ *kcl.LeaseLostInput) {
	if s.wm == nil {
		return
	}
	s.cancel(fmt.Errorf("lanes: shard %s: %w", s.shardID, lease.ErrLeaseLost))
	s.waitStopped(ctx)
	s.f.met.forget(s.shardID)
}

// ShardEnded waits until every record of the shard is handled or stored
// by the destination and checkpoints the watermark; the worker then
// checkpoints SHARD_END.
func (s *shardProcessor) ShardEnded(ctx context.Context, in *kcl.ShardEndedInput) error {
	return s.close(ctx, in.Checkpointer, false)
}

// ShutdownRequested finishes the records up to the last one a lane has
// started (the lanes behind it catch up; records queued after it are
// left for the next owner, which reads them again from the watermark),
// within ctx, and checkpoints the watermark. No record is then handled
// twice across the hand-over. When ctx ends first, the lanes are stopped
// and the checkpoint covers what they finished.
func (s *shardProcessor) ShutdownRequested(ctx context.Context, in *kcl.ShutdownRequestedInput) error {
	return s.close(ctx, in.Checkpointer, true)
}

// finalTimeout bounds the wait for the lanes to return and the last
// checkpoint of a shard whose closing context ended.
const finalTimeout = 2 * time.Second

// close drains the lanes (all their records, or with cut the records up
// to the last one started), stops them and checkpoints the watermark.
func (s *shardProcessor) close(ctx context.Context, cp *kcl.Checkpointer, cut bool) error {
	if s.wm == nil {
		return nil
	}
	if cp != nil {
		s.cp.Store(cp)
	}
	s.draining.Store(true)
	end := s.cutLanes(cut)
	stop := context.AfterFunc(ctx, s.wm.wake)
	s.wm.waitThrough(end, func() bool { return ctx.Err() != nil || s.ctx.Err() != nil })
	stop()
	drainErr := context.Cause(s.ctx)
	if drainErr == nil && ctx.Err() != nil {
		drainErr = fmt.Errorf("lanes: shard %s: %d records not finished: %w", s.shardID, s.wm.held(), ctx.Err())
	}
	s.cancel(errClosed)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalTimeout)
	defer cancel()
	s.waitStopped(fctx)
	err := s.writeMark(fctx)
	s.f.met.forget(s.shardID)
	if drainErr != nil && !errors.Is(drainErr, errClosed) {
		return errors.Join(drainErr, err)
	}
	return err
}

// cutLanes stops the lanes from starting records past the last one any
// lane has started (with cut), wakes them so that none waits for
// BatchWindow, and returns the ordinal the watermark must reach: every
// record before it finished.
func (s *shardProcessor) cutLanes(cut bool) uint64 {
	if !cut {
		for _, l := range s.lanes {
			l.notify()
		}
		return s.wm.end()
	}
	for _, l := range s.lanes {
		l.mu.Lock()
	}
	var end uint64
	for _, l := range s.lanes {
		end = max(end, l.taken)
	}
	for _, l := range s.lanes {
		l.cut, l.hasCut = end, true
		l.mu.Unlock()
		l.notify()
	}
	return end
}

// waitStopped waits for the lanes and the checkpoint writer to return,
// at most until ctx ends (a Handler that ignores its context keeps its
// lane running).
func (s *shardProcessor) waitStopped(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.running.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("lanes still running after the shard's processing stopped (a Handler ignoring its context?)")
	}
}

// writeCheckpoints writes the watermark whenever it moves (at most once
// per Config.CheckpointInterval), until the lanes stop. A write under way
// then completes: it is cut short only with the shard's context.
func (s *shardProcessor) writeCheckpoints() {
	for attempt := 0; ; {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wm.moved:
		}
		for {
			err := s.writeMark(s.shardCtx)
			if s.ctx.Err() != nil {
				return
			}
			if err == nil {
				attempt = 0
				if backoff.Sleep(s.ctx, s.f.cfg.CheckpointInterval) != nil {
					return
				}
				break
			}
			if errors.Is(err, lease.ErrLeaseLost) {
				s.cancel(err)
				return
			}
			attempt++
			s.log.Warn("checkpointing the watermark failed; retrying", zap.Int("attempt", attempt), zap.Error(err))
			if backoff.Sleep(s.ctx, s.f.retry.Delay(attempt)) != nil {
				return
			}
		}
	}
}

// writeMark checkpoints the watermark when it moved past the last
// checkpoint written.
func (s *shardProcessor) writeMark(ctx context.Context) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	pos, ok := s.wm.current()
	cp := s.cp.Load()
	if !ok || cp == nil || pos.Compare(s.written) <= 0 {
		return nil
	}
	if err := cp.CheckpointAt(ctx, pos.Sequence, pos.SubSequence); err != nil {
		return err
	}
	s.written = pos
	return nil
}
