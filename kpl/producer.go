// Package kpl writes records to a Kinesis data stream at the full per-shard
// limit: it aggregates user records bound for the same shard into KPL
// aggregated records (readable by AWS's KCL and by this project's kcl),
// collects them into PutRecords requests, limits its rate per shard, retries
// what fails with backoff, and pushes back on callers when its buffer is
// full.
//
// Config.Stream names the stream by name or by ARN; the producer calls
// Kinesis through Config.Kinesis (by default a client from the standard AWS
// config chain), making only the calls of KinesisAPI.
//
//	p, err := kpl.New(kpl.Config{Stream: "events"})
//	...
//	defer p.Close(ctx)
//	err = p.Put(ctx, kpl.Record{PartitionKey: id, Data: b}, func(r kpl.Result) {
//		if r.Err != nil { ... }   // r.ShardID, r.SequenceNumber on success
//	})
package kpl

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/internal/streamref"
)

// Errors callers act on, matched with errors.Is.
var (
	// ErrRecordExpired fails a record that was not written within
	// Config.RecordTTL. The error wraps the last failure, if any.
	ErrRecordExpired = errors.New("kpl: record expired before it could be written")
	// ErrBufferFull is returned by Put when the buffer is full and
	// Config.FailWhenBufferFull is set.
	ErrBufferFull = errors.New("kpl: producer buffer full")
	// ErrClosed is returned by Put after Close, and fails the records that
	// Close could not send before its deadline.
	ErrClosed = errors.New("kpl: producer closed")
	// ErrInvalidRecord is wrapped by the errors Put returns for records
	// Kinesis would reject: the message names what is wrong.
	ErrInvalidRecord = errors.New("kpl: invalid record")
)

// Record is a user record to put.
type Record struct {
	// PartitionKey decides the record's shard (unless ExplicitHashKey is
	// set) and groups records for consumers: 1 to 256 Unicode characters,
	// counted as Kinesis counts them, in UTF-16 code units (a character
	// outside the Basic Multilingual Plane, such as an emoji, counts twice).
	PartitionKey string
	// ExplicitHashKey, if not empty, is the decimal hash key in
	// [0, 2^128-1], without leading zeros, that decides the record's shard
	// instead of the partition key's MD5 hash.
	ExplicitHashKey string
	// Data is the payload. Put copies it, so the caller may reuse it.
	Data []byte
}

// Result is the outcome of one record, passed to its callback.
type Result struct {
	// Err is nil when the record was written, and the reason otherwise:
	// ErrRecordExpired, ErrClosed, an *EntryError, or the error of the
	// PutRecords or ListShards call (wrapped).
	Err error
	// ShardID and SequenceNumber say where the record was written. The
	// user records of one aggregated record share them.
	ShardID        string
	SequenceNumber string
	// SubSequenceNumber is the record's index in its aggregated record
	// (0 for a record sent on its own).
	SubSequenceNumber uint64
	// Aggregated is true when the record was written inside an
	// aggregated record.
	Aggregated bool
	// Attempts is how many times the record was sent.
	Attempts int
}

// EntryError is the failure of one PutRecords entry, with the ErrorCode and
// ErrorMessage Kinesis returned. A record fails with it when the code is
// not worth retrying; a record that expired while retrying wraps its last
// one.
type EntryError struct {
	Code, Message string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("kpl: PutRecords entry failed: %s: %s", e.Code, e.Message)
}

// Producer writes records to one stream. Its methods are safe for
// concurrent use. Close it to stop its goroutines.
type Producer struct {
	cfg     Config
	stream  streamref.Ref
	client  KinesisAPI
	log     *zap.Logger
	metrics *metrics
	start   time.Time
	retry   backoff.Policy // delay before a shard's records are sent again

	shards   atomic.Pointer[shardMap]
	mu       sync.Mutex // guards unrouted, inflightPrev and inflightCur
	unrouted []userRec  // records put before the first shard map
	mapErr   error      // why the shard map last failed to load; nil after a load
	dead     bool       // set by Close: no more records are queued
	// In-flight requests sent under the current shard map and under earlier
	// ones (PreserveOrder waits for the latter after a reshard).
	inflightCur, inflightPrev int

	inflight atomic.Int32 // PutRecords requests in flight
	idle     atomic.Bool  // the dispatcher found nothing to do; Put wakes it
	nextWake atomic.Int64 // nanotime of the dispatcher's next planned run
	ready    atomic.Int64 // entries sealed since the dispatcher last ran
	readyB   atomic.Int64 // their bytes
	flushing atomic.Int32 // Flush or Close waiting: send without lingering
	wake     chan struct{}
	refresh  chan struct{}

	// Buffer accounting. bufRecords counts records by flush epoch until
	// their callbacks have returned (Flush and Close wait on it); held and
	// bufBytes count the records and bytes that take room in the buffer,
	// given back just before the callbacks run, so that a callback can put
	// a record in the room of the one it completes.
	epoch      atomic.Uint32
	bufRecords [2]atomic.Int64
	held       atomic.Int64
	bufBytes   atomic.Int64
	waiters    atomic.Int32
	// maxBytes and maxRecords are the buffer's bounds: the configured
	// ones, or, for those left at their defaults, no more than the stream
	// can take within half of RecordTTL (see setDrainBound).
	maxBytes, maxRecords   atomic.Int64
	bodyBytes              atomic.Int64 // request bodies in flight, counted against maxBytes
	freeBodyBytes          atomic.Int64 // capacity of the request bodies kept for reuse
	autoBytes, autoRecords bool
	spaceMu                sync.Mutex
	spaceCh                chan struct{} // closed and replaced whenever records complete

	flushMu   sync.Mutex
	closed    atomic.Bool
	closedCh  chan struct{}
	closeOnce sync.Once
	closeErr  error
	aborting  atomic.Bool
	// closeFailed counts the records failed with ErrClosed.
	closeFailed atomic.Int64

	stop       chan struct{}   // closed to stop the dispatcher and refresher
	runCtx     context.Context // canceled when the producer stops
	runCancel  context.CancelFunc
	sendCtx    context.Context // canceled when Close gives up on in-flight requests
	sendCancel context.CancelFunc
	wg         sync.WaitGroup // dispatcher, refresher and senders

	scan      int              // dispatcher's rotating start shard
	bufs      sync.Pool        // request buffers (*[]byte)
	bodies    freeList[[]byte] // request bodies
	scratch   freeList[*bodyScratch]
	batches   freeList[*batch] // batches, with the memory holding their records
	keepBatch int              // the largest batch kept in batches
}

// New starts a producer for cfg.Stream. It makes no calls itself; the shard
// map is loaded in the background, and records put meanwhile wait for it.
func New(cfg Config) (*Producer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	autoBytes, autoRecords := cfg.MaxBufferedBytes == 0, cfg.MaxBufferedRecords == 0
	cfg = cfg.withDefaults()
	stream, _ := streamref.Parse(cfg.Stream) // Validate accepted it
	p := &Producer{
		cfg:      cfg,
		stream:   stream,
		client:   cfg.Kinesis,
		log:      cfg.Logger,
		start:    time.Now(),
		retry:    backoff.Policy{Base: cfg.MinBackoff, Max: cfg.MaxBackoff},
		wake:     make(chan struct{}, 1),
		refresh:  make(chan struct{}, 1),
		spaceCh:  make(chan struct{}),
		closedCh: make(chan struct{}),
		stop:     make(chan struct{}),
	}
	p.autoBytes, p.autoRecords = autoBytes, autoRecords
	// Batches come back to the free list once their records completed,
	// enough to hold a full buffer of containers.
	p.keepBatch = 2 * cfg.AggregationMaxSize
	p.batches.max = max(cfg.MaxBufferedBytes/cfg.AggregationMaxSize, 16)
	p.bodies.max = 4  // request bodies in flight take a quarter of what the buffer holds: a few
	p.scratch.max = 4 // one for each body being written at once (up to 1 MiB each)
	p.maxBytes.Store(int64(cfg.MaxBufferedBytes))
	p.maxRecords.Store(int64(cfg.MaxBufferedRecords))
	if p.log == nil {
		p.log = zap.NewNop()
	}
	p.log = p.log.With(zap.String("stream", stream.ShortName()))
	if p.client == nil {
		awsCfg, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("kpl: load AWS config: %w", err)
		}
		p.client = kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) {
			o.Retryer = aws.NopRetryer{}
		})
	}
	m, err := newMetrics(cfg.Metrics, p)
	if err != nil {
		return nil, err
	}
	p.metrics = m
	p.idle.Store(true) // the first Put wakes the dispatcher
	p.runCtx, p.runCancel = context.WithCancel(context.Background())
	p.sendCtx, p.sendCancel = context.WithCancel(context.Background())
	p.wg.Add(2)
	go p.dispatchLoop()
	go p.refreshLoop()
	return p, nil
}

// nanotime is the producer's monotonic clock in nanoseconds.
func (p *Producer) nanotime() int64 { return int64(time.Since(p.start)) }

// pending is a user record's bookkeeping while it is in the producer's
// care. In a batch, its data and keys are in the batch's encoder.
type pending struct {
	cb       func(Result)
	put      int64  // nanotime of Put
	size     uint32 // data plus partition key, in bytes
	attempts int32
	epoch    uint8
}

// room is what the record counts against MaxBufferedBytes.
func (r *pending) room() int64 { return int64(r.size) + recordOverhead }

// recordOverhead is what a buffered record takes besides its data and
// partition key, as measured in heap profiles: its pending entry (32 bytes)
// and the spare capacity of the slice holding it, its framing in the
// container, its share of the container's partition key index, and the
// container memory not yet filled. The buffer counts it, so that
// MaxBufferedBytes bounds the memory of small records too.
const recordOverhead = 128

// userRec is a user record outside any batch: being put, waiting for a
// shard map, or moving between shards. It holds its data and keys itself.
type userRec struct {
	pending
	pk, ehk string
	data    []byte
	key     hashkey.Key
	lastErr error // why the last attempt failed
}

// Put queues a record and returns; callback (which may be nil) is called
// once with the outcome, from one of the producer's goroutines. Callbacks
// hold up the completion of other records while they run: they should
// return quickly and must not call PutSync, Flush or Close. A callback may
// call Put: the completed record's room in the buffer is given back before
// its callback runs, but a callback that puts more records than it
// completes may wait for room that only completions make (set
// FailWhenBufferFull, or pass a context with a deadline).
//
// Put returns an error, and does not call callback, when the record is
// invalid (wrapping ErrInvalidRecord), the producer is closed
// (ErrClosed), the buffer is full (ErrBufferFull, with
// Config.FailWhenBufferFull), ctx ends while Put waits for room, or no shard
// map could be loaded yet for a reason retrying will not fix (such as
// ResourceNotFoundException: the error of the ListShards call).
func (p *Producer) Put(ctx context.Context, rec Record, callback func(Result)) error {
	key, err := p.validate(&rec)
	if err != nil {
		return err
	}
	r := userRec{pk: rec.PartitionKey, ehk: rec.ExplicitHashKey, data: rec.Data, key: key}
	r.cb, r.size = callback, uint32(len(rec.Data)+len(rec.PartitionKey))
	size := r.room()
	if err := p.reserve(ctx, size, &r.pending); err != nil {
		return err
	}
	r.put = p.nanotime()
	for {
		m := p.shards.Load()
		if m == nil {
			p.mu.Lock()
			if p.dead {
				p.mu.Unlock()
				p.release(int(r.epoch), 1, size)
				return ErrClosed
			}
			if p.shards.Load() != nil {
				p.mu.Unlock()
				continue
			}
			if err := p.mapErr; awserr.IsFatal(err) {
				p.mu.Unlock()
				p.release(int(r.epoch), 1, size)
				return err
			}
			r.data = cloneData(r.data)
			p.unrouted = append(p.unrouted, r)
			p.mu.Unlock()
			break
		}
		s := m.lookup(key)
		s.mu.Lock()
		if s.dead {
			s.mu.Unlock()
			p.release(int(r.epoch), 1, size)
			return ErrClosed
		}
		if s.removed {
			s.mu.Unlock()
			continue // the shard map changed under us
		}
		sealed, sealedBytes, started := p.addLocked(s, &r)
		s.mu.Unlock()
		if sealed > 0 {
			n := p.ready.Add(int64(sealed))
			b := p.readyB.Add(sealedBytes)
			if n >= int64(p.cfg.CollectionMaxCount) || b >= int64(p.cfg.CollectionMaxSize) {
				p.signal()
			}
		}
		// A new batch must go out by its linger deadline: wake the
		// dispatcher if it plans to sleep past that.
		if started && p.nextWake.Load() > r.put+int64(p.cfg.RecordMaxBufferedTime) {
			p.signal()
		}
		break
	}
	if p.idle.Load() && p.idle.CompareAndSwap(true, false) {
		p.signal()
	}
	return nil
}

// PutSync puts a record and waits for its outcome. If ctx ends first, it
// returns ctx's error; the record may still be written later.
func (p *Producer) PutSync(ctx context.Context, rec Record) (Result, error) {
	ch := make(chan Result, 1)
	if err := p.Put(ctx, rec, func(r Result) { ch <- r }); err != nil {
		return Result{Err: err}, err
	}
	select {
	case r := <-ch:
		return r, r.Err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}

func (p *Producer) validate(rec *Record) (hashkey.Key, error) {
	pk := rec.PartitionKey
	if pk == "" {
		return hashkey.Key{}, fmt.Errorf("%w: partition key is empty", ErrInvalidRecord)
	}
	if !utf8.ValidString(pk) {
		return hashkey.Key{}, fmt.Errorf("%w: partition key is not valid UTF-8", ErrInvalidRecord)
	}
	if len(pk) > MaxPartitionKeyChars {
		if n := utf16Len(pk); n > MaxPartitionKeyChars {
			return hashkey.Key{}, fmt.Errorf("%w: partition key has %d characters (UTF-16 code units), more than %d", ErrInvalidRecord, n, MaxPartitionKeyChars)
		}
	}
	if n := len(rec.Data) + len(pk); n > p.cfg.MaxRecordSize {
		return hashkey.Key{}, fmt.Errorf("%w: data and partition key are %d bytes, more than the maximum record size %d", ErrInvalidRecord, n, p.cfg.MaxRecordSize)
	}
	if ehk := rec.ExplicitHashKey; ehk != "" {
		// Kinesis takes only the canonical form, 0|[1-9][0-9]*, and fails
		// the whole request (every record in it) otherwise.
		if len(ehk) > 1 && ehk[0] == '0' {
			return hashkey.Key{}, fmt.Errorf("%w: explicit hash key %q has a leading zero", ErrInvalidRecord, ehk)
		}
		k, err := hashkey.Parse(ehk)
		if err != nil {
			return hashkey.Key{}, fmt.Errorf("%w: explicit hash key: %w", ErrInvalidRecord, err)
		}
		return k, nil
	}
	return hashkey.FromPartitionKey(pk), nil
}

// utf16Len returns the length of s in UTF-16 code units, the unit in which
// Kinesis measures partition keys: characters outside the Basic
// Multilingual Plane count twice.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// reserve counts a record into the buffer, waiting for room if need be.
func (p *Producer) reserve(ctx context.Context, size int64, r *pending) error {
	for {
		e := p.epoch.Load() & 1
		r.epoch = uint8(e)
		p.bufRecords[e].Add(1)
		total := p.held.Add(1)
		b := p.bufBytes.Add(size)
		if p.closed.Load() {
			p.release(int(e), 1, size)
			return ErrClosed
		}
		// A record always fits in an empty buffer.
		maxR, maxB := p.maxRecords.Load(), p.memLimit()
		if (total <= maxR && b+p.bodyBytes.Load() <= maxB) || total == 1 {
			return nil
		}
		p.release(int(e), 1, size)
		if p.cfg.FailWhenBufferFull {
			return ErrBufferFull
		}
		p.metrics.putBlocked.Inc()
		ch := p.waitCh()
		if p.held.Load() < maxR && p.bufBytes.Load()+p.bodyBytes.Load()+size <= maxB {
			p.waiters.Add(-1)
			continue
		}
		select {
		case <-ch:
			p.waiters.Add(-1)
		case <-ctx.Done():
			p.waiters.Add(-1)
			return ctx.Err()
		case <-p.closedCh:
			p.waiters.Add(-1)
			return ErrClosed
		}
	}
}

// gcHeadroom is how much memory the Go heap takes for each byte it holds:
// with GOGC=100 (the default) the garbage collector lets the heap grow to
// twice its live data before it collects. The buffer holds no more than
// MaxBufferedBytes/gcHeadroom of records and request bodies, so that the
// memory they take stays within MaxBufferedBytes.
const gcHeadroom = 2

// memLimit is the bytes of records and request bodies the buffer holds at
// most.
func (p *Producer) memLimit() int64 { return p.maxBytes.Load() / gcHeadroom }

// setDrainBound lowers the buffer bounds left at their defaults to what a
// stream of the given number of shards can take within half of RecordTTL
// at its write limits (1 MiB/s per shard; and, without aggregation, where
// every user record is a Kinesis record, 1,000 records/s per shard), so
// that an application writing faster than the stream takes sees Put block
// rather than its records expire. Half, because the shard limits are not
// always all there is (other writers, retries after throttling).
func (p *Producer) setDrainBound(shards int) {
	secs := p.cfg.RecordTTL.Seconds() / 2
	if p.autoBytes {
		b := int64(float64(shards) * ShardBytesPerSecond * secs)
		b = max(min(b, DefaultMaxBufferedBytes), 2*int64(p.cfg.MaxRecordSize))
		p.maxBytes.Store(b)
	}
	if p.autoRecords && p.cfg.DisableAggregation {
		r := int64(float64(shards) * ShardRecordsPerSecond * secs)
		p.maxRecords.Store(max(min(r, DefaultMaxBufferedRecords), 1))
	}
	p.wakeWaiters() // a bound may have grown
}

// waitCh registers a waiter and returns the channel closed at the next
// completion. The caller decrements p.waiters when done.
func (p *Producer) waitCh() <-chan struct{} {
	p.waiters.Add(1)
	p.spaceMu.Lock()
	ch := p.spaceCh
	p.spaceMu.Unlock()
	return ch
}

// release takes completed (or rejected) records out of the buffer and wakes
// waiters.
func (p *Producer) release(epoch int, records int, bytes int64) {
	p.bufRecords[epoch].Add(-int64(records))
	p.held.Add(-int64(records))
	p.bufBytes.Add(-bytes)
	p.wakeWaiters()
}

// wakeWaiters wakes Put, Flush and Close calls waiting for completions.
func (p *Producer) wakeWaiters() {
	if p.waiters.Load() > 0 {
		p.spaceMu.Lock()
		close(p.spaceCh)
		p.spaceCh = make(chan struct{})
		p.spaceMu.Unlock()
	}
}

func (p *Producer) buffered() int64 {
	return p.bufRecords[0].Load() + p.bufRecords[1].Load()
}

// signal wakes the dispatcher.
func (p *Producer) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Flush sends every buffered record without waiting for
// RecordMaxBufferedTime and returns when every record put before the call
// has completed (its callback has returned), or with ctx's error.
func (p *Producer) Flush(ctx context.Context) error {
	p.flushMu.Lock()
	defer p.flushMu.Unlock()
	slot := (p.epoch.Add(1) - 1) & 1
	p.flushing.Add(1)
	defer p.flushing.Add(-1)
	p.signal()
	return p.waitFor(ctx, func() bool { return p.bufRecords[slot].Load() <= 0 })
}

func (p *Producer) waitFor(ctx context.Context, done func() bool) error {
	for {
		ch := p.waitCh()
		if done() {
			p.waiters.Add(-1)
			return nil
		}
		select {
		case <-ch:
			p.waiters.Add(-1)
		case <-ctx.Done():
			p.waiters.Add(-1)
			return ctx.Err()
		}
	}
}

// Close stops the producer: Put fails with ErrClosed from now on, buffered
// records are sent, and when ctx ends before they all completed, the rest
// fail with an error wrapping ErrClosed and ctx's error. Close returns when
// every callback has been called and the producer's goroutines have ended;
// its error is non-nil when records were failed that way. Later calls return
// the same error.
func (p *Producer) Close(ctx context.Context) error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		close(p.closedCh)
		p.flushing.Add(1)
		p.signal()
		err := p.waitFor(ctx, func() bool { return p.buffered() <= 0 })
		abortErr := ErrClosed
		if err != nil {
			abortErr = fmt.Errorf("%w before the record was written: %w", ErrClosed, err)
			p.aborting.Store(true)
			p.sendCancel()
		}
		close(p.stop)
		p.runCancel()
		p.wg.Wait()
		p.sendCancel()
		p.failAll(abortErr)
		// Requests in flight at the deadline may still have written their
		// records: count only what was failed.
		if n := p.closeFailed.Load(); err != nil && n > 0 {
			p.closeErr = fmt.Errorf("kpl: close: %d records not written: %w", n, err)
		}
		p.flushing.Add(-1)
		p.metrics.unregister()
	})
	return p.closeErr
}

// failAll fails every record still queued and marks the queues dead so
// that nothing more is queued. Only Close calls it, after the dispatcher,
// refresher and senders have ended.
func (p *Producer) failAll(err error) {
	var failed []userRec
	p.mu.Lock()
	p.dead = true
	failed = append(failed, p.unrouted...)
	p.unrouted = nil
	p.mu.Unlock()
	p.fail(failed, err, false)
	if m := p.shards.Load(); m != nil {
		for _, s := range m.shards {
			s.mu.Lock()
			s.dead = true
			batches := s.takeBatchesLocked(nil)
			s.mu.Unlock()
			for _, b := range batches {
				p.failBatch(b, err, false)
				freeBatch(b)
			}
		}
	}
}

// fail completes records with an error.
func (p *Producer) fail(recs []userRec, err error, expired bool) {
	if len(recs) == 0 {
		return
	}
	pend := make([]pending, len(recs))
	for i := range recs {
		pend[i] = recs[i].pending
	}
	p.failPending(pend, func(i int) error { return recs[i].lastErr }, err, expired)
}

// failBatch completes a batch's records with an error. The caller frees
// the batch.
func (p *Producer) failBatch(b *batch, err error, expired bool) {
	p.failPending(b.recs, func(int) error { return b.lastErr }, err, expired)
}

// failPending completes records with an error; lastErr(i) is why record i's
// last attempt failed.
func (p *Producer) failPending(recs []pending, lastErr func(i int) error, err error, expired bool) {
	if len(recs) == 0 {
		return
	}
	if expired {
		p.metrics.expired.Add(float64(len(recs)))
	}
	p.metrics.failed.Add(float64(len(recs)))
	if !expired && errors.Is(err, ErrClosed) {
		p.closeFailed.Add(int64(len(recs)))
	}
	p.giveRoom(recs)
	for i := range recs {
		r := &recs[i]
		e := err
		if expired {
			e = ErrRecordExpired
			if last := lastErr(i); last != nil {
				e = fmt.Errorf("%w (last error: %w)", ErrRecordExpired, last)
			}
		}
		if r.cb != nil {
			r.cb(Result{Err: e, Attempts: int(r.attempts)})
		}
	}
	p.releaseRecs(recs)
}

// giveRoom gives the buffer room of completed records back, before their
// callbacks run.
func (p *Producer) giveRoom(recs []pending) {
	var b int64
	for i := range recs {
		b += recs[i].room()
	}
	p.held.Add(-int64(len(recs)))
	p.bufBytes.Add(-b)
	p.wakeWaiters()
}

// releaseRecs takes completed records, whose room giveRoom gave back and
// whose callbacks have returned, out of the buffer accounting. Their batch
// may be freed afterwards.
func (p *Producer) releaseRecs(recs []pending) {
	var n [2]int
	for i := range recs {
		n[recs[i].epoch]++
	}
	for e := range n {
		if n[e] > 0 {
			p.bufRecords[e].Add(-int64(n[e]))
		}
	}
	p.wakeWaiters()
}
