package kpl

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// send makes one PutRecords call and completes or requeues its records.
func (p *Producer) send(req *request) {
	defer p.wg.Done()
	defer func() {
		p.inflight.Add(-1)
		p.metrics.inflight.Dec()
		p.mu.Lock()
		if m := p.shards.Load(); m != nil && m.version == req.version {
			p.inflightCur--
		} else {
			p.inflightPrev--
		}
		p.mu.Unlock()
		p.signal()
	}()

	defer func() {
		p.bodyBytes.Add(-req.bodyEst)
		p.wakeWaiters()
	}()
	var entries []types.PutRecordsRequestEntry
	var containers []*aggregation.Encoder
	_, sdk := p.client.(*kinesis.Client)
	if sdk && p.cfg.Compression == aggregation.None {
		// The SDK's client takes the body written here: the containers
		// go into it directly, never built on their own.
		entries, containers = p.entriesDirect(req)
	} else {
		req.buf = p.getBuf()
		defer p.putBuf(req) // the client keeps no reference once the call returned
		var err error
		entries, err = p.encode(req)
		if err != nil {
			// Compression failed: nothing was sent, and retrying will not help.
			p.completeRequest(req, nil, fmt.Errorf("kpl: %w", err))
			return
		}
	}
	now := p.nanotime()
	for _, b := range req.batches {
		p.metrics.bufferedTime.Observe(float64(now-b.oldest) / 1e9)
	}
	in := &kinesis.PutRecordsInput{
		StreamName: p.stream.Name(),
		StreamARN:  p.stream.ARN(),
		Records:    entries,
	}
	var opts []func(*kinesis.Options)
	var body []byte
	if sdk {
		// The SDK's client takes the body written here; any other client
		// reads the input.
		sc, ok := p.scratch.get()
		if !ok {
			sc = new(bodyScratch)
		}
		body = appendBody(p.getBody(bodySize(in, containers)), in, containers, sc)
		p.scratch.put(sc)
		opts = append(opts, withBody(body))
	}
	ctx, cancel := context.WithTimeout(p.sendCtx, p.cfg.RequestTimeout)
	out, err := p.client.PutRecords(ctx, in, opts...)
	cancel()
	if err == nil && body != nil {
		// The response was read whole: the transport is done with the body.
		p.putBody(body)
	}
	p.metrics.requests.Inc()
	if err == nil && (out == nil || len(out.Records) != len(entries)) {
		err = fmt.Errorf("kpl: PutRecords returned %d results for %d entries", resultCount(out), len(entries))
	}
	if err != nil {
		p.metrics.requestErrors.Inc()
		p.completeRequest(req, nil, err)
		return
	}
	p.completeRequest(req, out.Records, nil)
}

func resultCount(out *kinesis.PutRecordsOutput) int {
	if out == nil {
		return 0
	}
	return len(out.Records)
}

// encode builds the request's entries: aggregated records (compressed if so
// configured) and single records as they are.
func (p *Producer) encode(req *request) ([]types.PutRecordsRequestEntry, error) {
	entries := make([]types.PutRecordsRequestEntry, len(req.batches))
	total := 0
	for _, b := range req.batches {
		if len(b.recs) > 1 {
			total += b.enc.Size()
		}
	}
	buf := req.buf[:0]
	if cap(buf) < total {
		buf = make([]byte, 0, total)
	}
	aggPK := aws.String(aggregatedPartitionKey)
	for i, b := range req.batches {
		if len(b.recs) == 1 {
			entries[i] = b.singleEntry()
			continue
		}
		start := len(buf)
		buf = b.enc.AppendTo(buf)
		data := buf[start:len(buf):len(buf)]
		if p.cfg.Compression != aggregation.None {
			c, err := aggregation.Compress(nil, data, p.cfg.Compression)
			if err != nil {
				return nil, err
			}
			if len(c) < len(data) {
				data = c
			}
		}
		entries[i] = types.PutRecordsRequestEntry{Data: data, PartitionKey: aggPK, ExplicitHashKey: aws.String(b.key.String())}
	}
	req.buf = buf
	return entries, nil
}

// singleEntry is the entry of a batch sent as its one record.
func (b *batch) singleEntry() types.PutRecordsRequestEntry {
	e := types.PutRecordsRequestEntry{Data: b.singleData(), PartitionKey: aws.String(b.pk)}
	if b.ehk != "" {
		e.ExplicitHashKey = aws.String(b.ehk)
	}
	return e
}

// noData is the Data of the entries whose data is written into the body
// from their containers (the SDK's validation wants it not nil).
var noData = []byte{}

// entriesDirect builds the request's entries for the body writer: single
// records as they are, and for aggregated records the partition and
// explicit hash keys, with their containers to be encoded into the body.
func (p *Producer) entriesDirect(req *request) ([]types.PutRecordsRequestEntry, []*aggregation.Encoder) {
	entries := make([]types.PutRecordsRequestEntry, len(req.batches))
	containers := make([]*aggregation.Encoder, len(req.batches))
	aggPK := aws.String(aggregatedPartitionKey)
	for i, b := range req.batches {
		if len(b.recs) == 1 {
			entries[i] = b.singleEntry()
			continue
		}
		entries[i] = types.PutRecordsRequestEntry{Data: noData, PartitionKey: aggPK, ExplicitHashKey: aws.String(b.key.String())}
		containers[i] = &b.enc
	}
	return entries, containers
}

// completeRequest settles every batch of a request: with results, entry by
// entry; with err, all alike.
func (p *Producer) completeRequest(req *request, results []types.PutRecordsResultEntry, err error) {
	now := p.nanotime()
	refresh := false
	// Shards whose in-flight count this request holds, released only after
	// failed records are back in their queues, so that with PreserveOrder
	// nothing newer overtakes them.
	var held []*shard
	outcome := map[*shard]*shardOutcome{}
	for i, b := range req.batches {
		s := b.shard
		if len(held) == 0 || held[len(held)-1] != s {
			held = append(held, s)
		}
		o := outcome[s]
		if o == nil {
			o = &shardOutcome{}
			outcome[s] = o
		}
		for j := range b.recs {
			b.recs[j].attempts++
		}
		var failure error
		retryable := false
		if err != nil {
			failure = fmt.Errorf("kpl: PutRecords: %w", err)
			retryable = !p.aborting.Load() && awserr.IsRetryable(err)
			if awserr.IsThrottling(err) {
				p.metrics.throttled.Inc()
				o.throttled = true
			}
			if p.aborting.Load() {
				// The call was cut short: it may have taken effect.
				failure = fmt.Errorf("%w before the request completed (the record may have been written): %w", ErrClosed, err)
			}
		} else if res := results[i]; res.ErrorCode != nil {
			code := aws.ToString(res.ErrorCode)
			failure = &EntryError{Code: code, Message: aws.ToString(res.ErrorMessage)}
			retryable = awserr.RetryableEntryCode(code)
			if awserr.ThrottlingEntryCode(code) {
				p.metrics.throttled.Inc()
				o.throttled = true
			}
		} else {
			shardID := aws.ToString(res.ShardId)
			if shardID != s.id {
				refresh = true
			}
			p.succeed(b, shardID, aws.ToString(res.SequenceNumber))
			o.succeeded = true
			freeBatch(b)
			continue
		}
		if retryable {
			o.retry = true
			b.lastErr = failure
			p.metrics.retried.Add(float64(len(b.recs)))
			if !p.cfg.PreserveOrder {
				// Sent again as it is: not taken apart, not encoded again.
				o.batches = append(o.batches, b)
				continue
			}
			o.recs = b.unpack(o.recs)
		} else {
			p.log.Warn("records failed", zap.Int("records", len(b.recs)), zap.String("shard", s.id), zap.Error(failure))
			p.failBatch(b, failure, false)
		}
		freeBatch(b)
	}
	if refresh {
		p.log.Debug("records landed on another shard than predicted; refreshing the shard map")
		p.requestRefresh()
	}
	for _, s := range held {
		if o := outcome[s]; o != nil {
			p.settleShard(s, o, now)
			if len(o.batches) > 0 {
				p.requeueBatches(s, o.batches, now)
			}
			if len(o.recs) > 0 {
				p.requeue(s, o.recs, now)
			}
			outcome[s] = nil
		}
	}
	for _, s := range held {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}
}

// shardOutcome sums up how a request went for one shard.
type shardOutcome struct {
	succeeded, retry, throttled bool
	recs                        []userRec // to retry, in order
	batches                     []*batch  // to retry as they are, in order
}

// settleShard updates a shard's backoff after a request. A request with
// retried entries delays the shard's next send by full jitter over a
// ceiling that doubles with each consecutive failed request, but stays at
// the minimum when some of the shard's entries got through (the shard is at
// its limit, not failing). Throttling also empties the shard's token
// buckets, so that the client-side limit falls in step with the service's.
func (p *Producer) settleShard(s *shard, o *shardOutcome, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case !o.retry:
		s.failures = 0
		return
	case o.succeeded:
		s.failures = 1
	default:
		s.failures++
	}
	s.retryAt = max(s.retryAt, now+int64(p.retry.Delay(s.failures)))
	if o.throttled {
		s.drain = true
	}
}

// succeed calls the callbacks of a batch written as one Kinesis record.
func (p *Producer) succeed(b *batch, shardID, seq string) {
	p.metrics.kinesisRecords.Inc()
	p.metrics.userRecords.Add(float64(len(b.recs)))
	p.metrics.bytes.Add(float64(b.wireSize()))
	p.metrics.aggregation.Observe(float64(len(b.recs)))
	agg := len(b.recs) > 1
	p.giveRoom(b.recs)
	for j := range b.recs {
		r := &b.recs[j]
		if r.cb != nil {
			r.cb(Result{ShardID: shardID, SequenceNumber: seq, SubSequenceNumber: uint64(j), Aggregated: agg, Attempts: int(r.attempts)})
		}
	}
	p.releaseRecs(b.recs)
}

// requeue puts failed records back at the front of their shard's queue,
// failing those past their TTL. If the shard has left the shard map, its
// queue has moved to the new shards, and the records follow it there.
// Either way they stay ahead of the records put after them.
func (p *Producer) requeue(s *shard, recs []userRec, now int64) {
	expired, kept := splitExpired(recs, now, int64(p.cfg.RecordTTL))
	p.fail(expired, nil, true)
	if len(kept) == 0 {
		return
	}
	s.mu.Lock()
	switch {
	case s.dead:
		s.mu.Unlock()
		p.fail(kept, ErrClosed, false)
	case s.removed:
		s.mu.Unlock()
		p.route(kept)
	default:
		p.requeueLocked(s, kept)
		s.mu.Unlock()
	}
	p.signal()
}

// requeueBatches puts failed batches back at the front of their shard's
// queue as they are, after taking out the records past their TTL. If the
// shard is closed or has left the shard map, their records go the way
// requeue sends them.
func (p *Producer) requeueBatches(s *shard, batches []*batch, now int64) {
	ttl := int64(p.cfg.RecordTTL)
	var expired []userRec
	keep := batches[:0]
	for _, b := range batches {
		if b.oldest+ttl <= now {
			var nb *batch
			if expired, nb = p.expireBatch(b, now, expired); nb == nil {
				continue
			}
			b = nb
		}
		keep = append(keep, b)
	}
	p.fail(expired, nil, true)
	if len(keep) == 0 {
		return
	}
	s.mu.Lock()
	if s.dead || s.removed {
		s.mu.Unlock()
		var recs []userRec
		for _, b := range keep {
			recs = b.unpack(recs)
			freeBatch(b)
		}
		p.requeue(s, recs, now)
		return
	}
	s.sealed = append(keep, s.sealed...)
	s.mu.Unlock()
	p.signal()
}

// route queues records on the shards of the current map, keeping their
// order per shard; without a map they wait in p.unrouted.
func (p *Producer) route(recs []userRec) {
	for len(recs) > 0 {
		m := p.shards.Load()
		if m == nil {
			p.mu.Lock()
			if p.dead {
				p.mu.Unlock()
				p.fail(recs, ErrClosed, false)
				return
			}
			if p.shards.Load() == nil {
				p.unrouted = append(p.unrouted, recs...)
				p.mu.Unlock()
				return
			}
			p.mu.Unlock()
			continue
		}
		// Group by target shard, keeping order within each group.
		groups := make(map[*shard][]userRec)
		var order []*shard
		for _, r := range recs {
			s := m.lookup(r.key)
			if _, ok := groups[s]; !ok {
				order = append(order, s)
			}
			groups[s] = append(groups[s], r)
		}
		var again []userRec
		for _, s := range order {
			s.mu.Lock()
			switch {
			case s.dead:
				s.mu.Unlock()
				p.fail(groups[s], ErrClosed, false)
			case s.removed:
				s.mu.Unlock()
				again = append(again, groups[s]...)
			default:
				p.requeueLocked(s, groups[s])
				s.mu.Unlock()
			}
		}
		recs = again
	}
}

// Request buffers (the encoded aggregated records of one request) are
// reused: a request's data is dead once its call has returned.
func (p *Producer) getBuf() []byte {
	if b, ok := p.bufs.Get().(*[]byte); ok {
		return *b
	}
	return nil
}

func (p *Producer) putBuf(req *request) {
	if cap(req.buf) == 0 || cap(req.buf) > 2*MaxRequestSize {
		return
	}
	b := req.buf[:0]
	req.buf = nil
	p.bufs.Put(&b)
}

// Request bodies are reused too, once a call has returned with its
// response: a buffer is taken from the free list when it is large enough.
// The bodies kept take no more than the quarter of the buffer's bound that
// bodies in flight may take.
func (p *Producer) getBody(n int) []byte {
	if b, ok := p.bodies.get(); ok {
		p.freeBodyBytes.Add(-int64(cap(b)))
		if cap(b) >= n {
			return b[:0]
		}
	}
	return make([]byte, 0, n)
}

func (p *Producer) putBody(b []byte) {
	if p.freeBodyBytes.Add(int64(cap(b))) > p.memLimit()/4 {
		p.freeBodyBytes.Add(-int64(cap(b)))
		return
	}
	p.bodies.put(b[:0])
}
