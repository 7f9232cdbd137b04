package kpl

import (
	"math"
	"time"
)

// request is one PutRecords call in the making.
type request struct {
	batches []*batch
	bytes   int
	bodyEst int64  // its body's size, at most, counted in p.bodyBytes while it is in flight
	version uint64 // shard map version it was built under
	buf     []byte // encoded aggregated records
}

// dispatchLoop runs the dispatcher until Close: it wakes when records are
// ready, when a request completes, and at the next deadline (linger, retry
// backoff, rate limit or TTL), and sends what is due.
func (p *Producer) dispatchLoop() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
		case <-timer.C:
		}
		next := p.pump()
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		if next != math.MaxInt64 {
			timer.Reset(time.Duration(max(next-p.nanotime(), 0)))
		}
	}
}

// pump sends what is due and returns the nanotime at which it should run
// again (math.MaxInt64: only when woken).
func (p *Producer) pump() int64 {
	now := p.nanotime()
	// Until this run has decided when to run next, new batches wake it.
	p.nextWake.Store(math.MaxInt64)
	p.idle.Store(true)
	p.ready.Store(0)
	p.readyB.Store(0)
	next := int64(math.MaxInt64)
	pending := false
	force := p.flushing.Load() > 0
	ttl := int64(p.cfg.RecordTTL)
	linger := int64(p.cfg.RecordMaxBufferedTime)

	m := p.shards.Load()
	if m == nil {
		p.mu.Lock()
		expired, kept := splitExpired(p.unrouted, now, ttl)
		p.unrouted = kept
		for i := range expired {
			if expired[i].lastErr == nil {
				expired[i].lastErr = p.mapErr
			}
		}
		if len(kept) > 0 {
			pending = true
			next = kept[0].put + ttl
		}
		p.mu.Unlock()
		p.fail(expired, nil, true)
		if pending {
			p.idle.Store(false)
		}
		p.nextWake.Store(next)
		return next
	}

	p.mu.Lock()
	barrier := p.cfg.PreserveOrder && p.inflightPrev > 0
	p.mu.Unlock()

	var req *request
	full := false // no connection left
	var expired []userRec
	n := len(m.shards)
	p.scan++
	for i := 0; i < n; i++ {
		s := m.shards[(p.scan+i)%n]
		s.mu.Lock()
		oldest, ok := s.oldestLocked()
		if !ok {
			s.mu.Unlock()
			continue
		}
		pending = true
		if oldest+ttl <= now {
			expired = p.expireLocked(s, now, expired)
			if oldest, ok = s.oldestLocked(); !ok {
				s.mu.Unlock()
				continue
			}
		}
		next = min(next, oldest+ttl)
		if full || barrier || (p.cfg.PreserveOrder && s.inflight > 0) {
			s.mu.Unlock()
			continue // woken when a request completes
		}
		p.adaptRateLocked(s, now)
		if s.retryAt > now {
			next = min(next, s.retryAt)
			s.mu.Unlock()
			continue
		}
		taken := 0
		for {
			var b *batch
			open := false
			if len(s.sealed) > 0 {
				b = s.sealed[0]
			} else if s.open != nil && len(s.open.recs) > 0 {
				if !force && s.open.oldest+linger > now {
					next = min(next, s.open.oldest+linger)
					break
				}
				b, open = s.open, true
			} else {
				break
			}
			if p.cfg.PreserveOrder && taken > 0 {
				break
			}
			size := b.wireSize()
			okB, atB := s.bytes.ready(float64(size), now)
			okR, atR := s.records.ready(1, now)
			if !okB || !okR {
				next = min(next, max(atB, atR))
				break
			}
			// Request bodies in flight count against the buffer's bound,
			// and take no more than a quarter of what it holds (memLimit;
			// but one batch may always go): a request ends where its body
			// would pass that.
			bodyRoom := p.memLimit()/4 - p.bodyBytes.Load()
			if req != nil && (len(req.batches) >= p.cfg.CollectionMaxCount || req.bytes+size > p.cfg.CollectionMaxSize ||
				bodyEstimate(req.bytes+size, len(req.batches)+1) > bodyRoom) {
				p.startRequest(req, m.version)
				req = nil
				bodyRoom = p.memLimit()/4 - p.bodyBytes.Load()
			}
			if req == nil {
				n := p.inflight.Load()
				if int(n) >= p.cfg.MaxConnections || (n > 0 && bodyEstimate(size, 1) > bodyRoom) {
					full = true
					break
				}
				req = &request{}
			}
			if len(req.batches) == 0 || req.batches[len(req.batches)-1].shard != s {
				s.inflight++ // once per request and shard; send releases it
			}
			s.bytes.take(float64(size))
			s.records.take(1)
			if open {
				s.open = nil
			} else {
				s.sealed[0] = nil
				s.sealed = s.sealed[1:]
			}
			req.batches = append(req.batches, b)
			req.bytes += size
			taken++
		}
		if len(s.sealed) == 0 && cap(s.sealed) > 64 {
			s.sealed = nil // let a drained backlog's slice go
		}
		s.mu.Unlock()
	}
	if req != nil {
		p.startRequest(req, m.version)
	}
	p.fail(expired, nil, true)
	if pending {
		p.idle.Store(false)
	}
	p.nextWake.Store(next)
	return next
}

// expireLocked removes s's records older than the TTL, appending them to
// dst. Only the batches holding expired records are touched: a batch whose
// records all expired is dropped, and one with records still in time is
// rebuilt from those. s.mu is held.
func (p *Producer) expireLocked(s *shard, now int64, dst []userRec) []userRec {
	ttl := int64(p.cfg.RecordTTL)
	keep := s.sealed[:0]
	for _, b := range s.sealed {
		if b.oldest+ttl > now {
			keep = append(keep, b)
			continue
		}
		var nb *batch
		dst, nb = p.expireBatch(b, now, dst)
		if nb != nil {
			keep = append(keep, nb)
		}
	}
	clear(s.sealed[len(keep):])
	s.sealed = keep
	if b := s.open; b != nil && len(b.recs) > 0 && b.oldest+ttl <= now {
		dst, s.open = p.expireBatch(b, now, dst)
	}
	return dst
}

// expireBatch appends b's expired records to dst and frees b, returning a
// new batch of its other records in their order, or nil if none is left.
func (p *Producer) expireBatch(b *batch, now int64, dst []userRec) ([]userRec, *batch) {
	ttl := int64(p.cfg.RecordTTL)
	var nb *batch
	i := 0
	for r := range b.enc.Records() {
		pd := b.recs[i]
		i++
		if pd.put+ttl <= now {
			dst = append(dst, userRec{pending: pd, lastErr: b.lastErr})
			continue
		}
		if nb == nil {
			nb = newBatch(b.shard)
			nb.oldest, nb.lastErr = pd.put, b.lastErr
			nb.key, nb.pk, nb.ehk = recordKey(r.PartitionKey, r.ExplicitHashKey), r.PartitionKey, r.ExplicitHashKey
		}
		// The records fitted in b together, so fewer of them fit in nb.
		nb.enc.Add(r)
		nb.recs = append(nb.recs, pd)
		nb.oldest = min(nb.oldest, pd.put)
	}
	freeBatch(b)
	return dst, nb
}

// splitExpired partitions recs into those whose TTL has passed and the
// rest, keeping the order of each.
func splitExpired(recs []userRec, now, ttl int64) (expired, kept []userRec) {
	kept = recs[:0:0]
	for _, r := range recs {
		if r.put+ttl <= now {
			expired = append(expired, r)
		} else {
			kept = append(kept, r)
		}
	}
	return expired, kept
}

// startRequest sends req in a goroutine of its own. Only the dispatcher
// calls it, so the connection count it checked still holds.
func (p *Producer) startRequest(req *request, version uint64) {
	req.version = version
	req.bodyEst = bodyEstimate(req.bytes, len(req.batches))
	p.bodyBytes.Add(req.bodyEst)
	p.inflight.Add(1)
	p.metrics.inflight.Inc()
	p.mu.Lock()
	if p.shards.Load().version == version {
		p.inflightCur++
	} else {
		p.inflightPrev++
	}
	p.mu.Unlock()
	p.wg.Add(1)
	go p.send(req)
}

// bodyEstimate is the most a PutRecords body of the given entries and
// bytes (data plus partition keys) takes: base64 takes 4 bytes for 3, each
// entry's JSON framing about 100.
func bodyEstimate(bytes, entries int) int64 {
	return int64(bytes/3*4 + 4 + 128*entries + 512)
}
