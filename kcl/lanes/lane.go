package lanes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/kcl"
)

// item is a record queued in a lane.
type item struct {
	rec      kcl.Record
	ord      uint64    // in the shard's watermark
	delivery uint64    // the ProcessRecords call that delivered it
	queued   time.Time // when it was queued in its lane
}

// lane handles the records of a shard routed to it, one batch at a time.
type lane struct {
	sp     *shardProcessor
	idx    int
	met    laneMetrics
	signal chan struct{} // a token when records are queued or the shard drains

	mu     sync.Mutex
	queue  []item
	taken  uint64 // the ordinal after the last record taken from the queue
	cut    uint64 // with hasCut, records of this ordinal and after are not taken
	hasCut bool
}

// push queues items, in order.
func (l *lane) push(items []item) {
	now := time.Now()
	for i := range items {
		items[i].queued = now
	}
	l.mu.Lock()
	l.queue = append(l.queue, items...)
	l.mu.Unlock()
	l.met.inFlight.Add(float64(len(items)))
	l.notify()
}

func (l *lane) notify() {
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

func (l *lane) run() {
	for {
		items, ok := l.next()
		if !ok {
			return
		}
		l.handle(items)
	}
}

// next waits for the lane's next batch; false when the lanes stop.
func (l *lane) next() ([]item, bool) {
	cfg := &l.sp.f.cfg
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		var wait time.Duration
		l.mu.Lock()
		if len(l.queue) > 0 && !(l.hasCut && l.queue[0].ord >= l.cut) {
			n, full := l.batchLen()
			wait = cfg.BatchWindow - time.Since(l.queue[0].queued)
			if full || wait <= 0 || l.sp.draining.Load() {
				items := make([]item, n)
				copy(items, l.queue)
				clear(l.queue[:n])
				l.queue = l.queue[n:]
				l.taken = items[n-1].ord + 1
				l.mu.Unlock()
				return items, true
			}
		}
		l.mu.Unlock()
		var expired <-chan time.Time
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			expired = timer.C
		}
		select {
		case <-l.signal:
		case <-expired:
		case <-l.sp.ctx.Done():
			return nil, false
		}
	}
}

// batchLen returns how many queued records the next batch takes, and
// whether that batch is full (so that BatchWindow need not be waited for).
// Called with l.mu held and a non-empty queue whose first record is
// before the cut, if any.
func (l *lane) batchLen() (n int, full bool) {
	n, full = l.fill()
	if l.hasCut {
		for i := range n {
			if l.queue[i].ord >= l.cut {
				return i, true
			}
		}
	}
	return n, full
}

func (l *lane) fill() (n int, full bool) {
	cfg := &l.sp.f.cfg
	if cfg.keepsDeliveries() {
		d := l.queue[0].delivery
		for n < len(l.queue) && l.queue[n].delivery == d {
			n++
		}
		return n, true
	}
	bytes := 0
	for n < len(l.queue) {
		size := len(l.queue[n].rec.Data)
		if n > 0 && cfg.BatchBytes > 0 && bytes+size > cfg.BatchBytes {
			return n, true
		}
		bytes += size
		n++
		if n == cfg.BatchSize || (cfg.BatchBytes > 0 && bytes >= cfg.BatchBytes) {
			return n, true
		}
	}
	return n, false
}

// segment is a part of a batch still to be handled: the whole batch, what
// follows a partial result, or a half of a bisected batch.
type segment struct {
	items    []item
	attempts int   // Handler calls the records were part of
	retries  int   // failed calls counted against MaxRetries
	err      error // of the last failed call
}

// handle handles one batch: calls the Handler, retries, bisects and gives
// up on records as the Config says, until every record is handled or
// stored by the destination, or the lanes stop.
func (l *lane) handle(items []item) {
	cfg := &l.sp.f.cfg
	ctx := l.sp.ctx
	todo := []segment{{items: items}}
	failures := 0 // consecutive failed calls, for the backoff
	for len(todo) > 0 && ctx.Err() == nil {
		seg := &todo[0]
		if cfg.MaxRecordAge > 0 {
			old, young := splitOld(seg.items, time.Now().Add(-cfg.MaxRecordAge))
			if len(old) > 0 {
				if !l.giveUp(old, RecordTooOld, seg) {
					return
				}
				seg.items = young
			}
			if len(young) == 0 {
				todo = todo[1:]
				continue
			}
		}
		seg.attempts++
		if seg.attempts > 1 {
			l.met.retries.Inc()
		}
		err := l.call(ctx, seg)
		if err == nil {
			l.complete(seg.items)
			l.met.handled.Add(float64(len(seg.items)))
			failures = 0
			todo = todo[1:]
			continue
		}
		if ctx.Err() != nil {
			return
		}
		var partial *BatchItemFailure
		if errors.As(err, &partial) && partial.Index > 0 && partial.Index < len(seg.items) {
			l.complete(seg.items[:partial.Index])
			l.met.handled.Add(float64(partial.Index))
			seg.items = seg.items[partial.Index:]
		}
		seg.err = err
		failures++
		if cfg.Bisect && len(seg.items) > 1 {
			l.met.bisections.Inc()
			half := (len(seg.items) + 1) / 2
			a, b := *seg, *seg
			a.items, b.items = seg.items[:half], seg.items[half:]
			todo = append([]segment{a, b}, todo[1:]...)
			l.log(seg, "Handler failed; bisecting the batch", err)
		} else {
			seg.retries++
			if limit := max(cfg.MaxRetries, 0); cfg.MaxRetries != 0 && seg.retries > limit {
				if !l.giveUp(seg.items, RetriesExhausted, seg) {
					return
				}
				todo = todo[1:]
				continue
			}
			l.log(seg, "Handler failed; retrying", err)
		}
		if l.sp.sleep(failures) != nil {
			return
		}
	}
}

// call calls the Handler for the records of seg; a panic is returned as
// an error wrapping kcl.ErrProcessorPanic.
func (l *lane) call(ctx context.Context, seg *segment) (err error) {
	recs := make([]kcl.Record, len(seg.items))
	for i := range seg.items {
		recs[i] = seg.items[i].rec
	}
	b := &Batch{ShardID: l.sp.shardID, Lane: l.idx, Records: recs, Attempt: seg.attempts}
	l.met.batchRecords.Observe(float64(len(recs)))
	start := time.Now()
	defer func() {
		l.met.latency.Observe(time.Since(start).Seconds())
		if r := recover(); r != nil {
			err = fmt.Errorf("Handle: %w: %v", kcl.ErrProcessorPanic, r)
		}
	}()
	return l.sp.f.cfg.Handler.Handle(ctx, b)
}

// giveUp hands records to the destination, retrying until it stores them;
// false when the lanes stopped first.
func (l *lane) giveUp(items []item, reason Reason, seg *segment) bool {
	sp := l.sp
	recs := make([]kcl.Record, len(items))
	for i := range items {
		recs[i] = items[i].rec
	}
	f := &Failure{ShardID: sp.shardID, Lane: l.idx, Records: recs, Reason: reason, Attempts: seg.attempts, Err: seg.err}
	for attempt := 1; ; attempt++ {
		err := sp.f.cfg.Destination.Send(sp.ctx, f)
		if err == nil {
			break
		}
		if sp.ctx.Err() != nil {
			return false
		}
		sp.log.Warn("failure destination refused records; retrying", zap.Int("lane", l.idx), zap.Int("records", len(recs)),
			zap.String("first_sequence", f.First().SequenceNumber), zap.Int("attempt", attempt), zap.Error(err))
		if sp.sleep(attempt) != nil {
			return false
		}
	}
	first, last := f.First(), f.Last()
	sp.log.Error("records given up on and sent to the failure destination", zap.Int("lane", l.idx),
		zap.String("reason", string(reason)), zap.Int("records", len(recs)), zap.Int("attempts", seg.attempts),
		zap.String("first_sequence", first.SequenceNumber), zap.Uint64("first_sub_sequence", first.SubSequenceNumber),
		zap.String("last_sequence", last.SequenceNumber), zap.Uint64("last_sub_sequence", last.SubSequenceNumber),
		zap.NamedError("last_error", seg.err))
	if reason == RecordTooOld {
		l.met.tooOld.Add(float64(len(items)))
	} else {
		l.met.exhausted.Add(float64(len(items)))
	}
	l.complete(items)
	return true
}

// complete marks records finished in the watermark.
func (l *lane) complete(items []item) {
	ords := make([]uint64, len(items))
	for i := range items {
		ords[i] = items[i].ord
	}
	l.sp.wm.complete(ords...)
	if l.sp.router != nil {
		l.sp.router.release(items)
	}
	l.met.inFlight.Sub(float64(len(items)))
}

func (l *lane) log(seg *segment, msg string, err error) {
	first, last := seg.items[0].rec, seg.items[len(seg.items)-1].rec
	l.sp.log.Warn(msg, zap.Int("lane", l.idx), zap.Int("records", len(seg.items)), zap.Int("attempt", seg.attempts),
		zap.String("first_sequence", first.SequenceNumber), zap.Uint64("first_sub_sequence", first.SubSequenceNumber),
		zap.String("last_sequence", last.SequenceNumber), zap.Uint64("last_sub_sequence", last.SubSequenceNumber), zap.Error(err))
}

// sleep waits before a retry (the attempt-th consecutive failure).
func (s *shardProcessor) sleep(attempt int) error {
	return backoff.Sleep(s.ctx, s.f.retry.Delay(attempt))
}

// splitOld returns the records that arrived before cutoff and the others,
// each in order.
func splitOld(items []item, cutoff time.Time) (old, young []item) {
	for _, it := range items {
		if t := it.rec.ApproximateArrivalTimestamp; !t.IsZero() && t.Before(cutoff) {
			old = append(old, it)
		} else {
			young = append(young, it)
		}
	}
	return old, young
}
