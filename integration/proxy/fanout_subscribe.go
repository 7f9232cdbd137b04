package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/aws/smithy-go/eventstream"
	"go.uber.org/zap"
)

// subscription is one SubscribeToShard event stream in progress.
type subscription struct {
	started time.Time
	ended   chan struct{} // closed by end
	reason  *awsError     // why it ended early, sent as an exception event; nil: no event
	once    bool
}

// end stops the subscription, with an exception event for reason if it is
// not nil. f.mu must be held.
func (s *subscription) end(reason *awsError) {
	if s.once {
		return
	}
	s.once = true
	s.reason = reason
	close(s.ended)
}

// startingPosition is SubscribeToShard's StartingPosition.
type startingPosition struct {
	Type           string
	SequenceNumber string   `json:",omitempty"`
	Timestamp      *float64 `json:",omitempty"`
}

// subscribeToShard answers SubscribeToShard: the checks AWS makes, then an
// event stream (initial-response, then SubscribeToShardEvent events) read
// from the upstream shard until the subscription's lifetime ends, a later
// call takes it over, the shard's end is reached, a fault is injected, or
// the caller goes away.
func (p *Proxy) subscribeToShard(w http.ResponseWriter, r *http.Request, body []byte) {
	ctx := r.Context()
	var in struct {
		ConsumerARN      string
		ShardId          string
		StartingPosition startingPosition
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeResponse(w, p.bad(badRequest(codeSerialization, "SubscribeToShard: %v", err)), false)
		return
	}
	f := p.fan
	refuse := func(resp response) {
		f.mu.Lock()
		f.stats.Refused++
		f.mu.Unlock()
		writeResponse(w, resp, false)
	}
	if in.ConsumerARN == "" || in.ShardId == "" || in.StartingPosition.Type == "" {
		refuse(p.bad(badRequest(codeInvalidArgument, "SubscribeToShard: ConsumerARN, ShardId and StartingPosition are required")))
		return
	}
	now := p.cfg.Now()
	key := in.ConsumerARN + "|" + in.ShardId
	f.mu.Lock()
	c := f.byARN(in.ConsumerARN, now)
	var e *awsError
	switch {
	case c == nil:
		ae := resourceNotFound("Consumer %s not found.", in.ConsumerARN)
		e = &ae
	case c.status(now) != "ACTIVE":
		e = badRequest(codeResourceInUse, "Consumer %s is not ACTIVE (%s).", in.ConsumerARN, c.status(now))
	case !p.cfg.NoLimits && !p.limits.call("SubscribeToShard|"+key, 1):
		// "You can make one call to SubscribeToShard per second per
		// registered consumer per shard."
		e = badRequest(codeLimitExceeded, "Rate exceeded for consumer %s and shard %s: one SubscribeToShard call per second.", in.ConsumerARN, in.ShardId)
	}
	if old := f.subs[key]; e == nil && old != nil && !old.once {
		if now.Sub(old.started) < takeOverAfter {
			e = badRequest(codeResourceInUse, "Another active subscription exists for consumer %s and shard %s.", in.ConsumerARN, in.ShardId)
		} else {
			old.end(&awsError{code: codeResourceInUse, message: "Another SubscribeToShard call took over this subscription."})
			f.stats.TakenOver++
		}
	}
	f.mu.Unlock()
	if e != nil {
		refuse(errorResponse(kinesisService, *e))
		return
	}

	stream := consumerStream(in.ConsumerARN)
	iter, cont, resp := p.firstIterator(ctx, r.Header, stream, in.ShardId, in.StartingPosition)
	if resp != nil {
		refuse(*resp)
		return
	}
	sub := &subscription{started: now, ended: make(chan struct{})}
	f.mu.Lock()
	if old := f.subs[key]; old != nil && !old.once {
		// A concurrent call won the race.
		f.mu.Unlock()
		refuse(errorResponse(kinesisService, *badRequest(codeResourceInUse,
			"Another active subscription exists for consumer %s and shard %s.", in.ConsumerARN, in.ShardId)))
		return
	}
	f.subs[key] = sub
	f.stats.Subscriptions++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		sub.end(nil)
		if f.subs[key] == sub {
			delete(f.subs, key)
		}
		f.mu.Unlock()
	}()
	p.log.Debug("proxy: SubscribeToShard", zap.String("consumer", in.ConsumerARN), zap.String("shard", in.ShardId))

	ew := &eventWriter{w: w, rc: http.NewResponseController(w), enc: eventstream.NewEncoder()}
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.Header().Set("X-Amzn-Requestid", requestID())
	w.WriteHeader(http.StatusOK)
	if ew.event("initial-response", []byte("{}")) != nil {
		return
	}
	s := &subscriber{p: p, h: r.Header, sub: sub, stream: stream, shard: in.ShardId, iter: iter, cont: cont,
		bytes: newBucket(f.cfg.BytesPerSecond, now), ew: ew}
	s.run(ctx)
}

// firstIterator gets the upstream iterator for a starting position, and the
// continuation sequence number to send before the first record: resuming
// after it reads what the subscription would have read. That is the
// position's own sequence number (AFTER_SEQUENCE_NUMBER), the one before it
// (AT_SEQUENCE_NUMBER), the last record's before the position (LATEST,
// AT_TIMESTAMP), else the shard's starting sequence number. A non-nil
// response is the error to answer with.
func (p *Proxy) firstIterator(ctx context.Context, h http.Header, stream streamRef, shard string, pos startingPosition) (string, string, *response) {
	in := map[string]any{"StreamName": stream.Name, "ShardId": shard, "ShardIteratorType": pos.Type}
	if pos.SequenceNumber != "" {
		in["StartingSequenceNumber"] = pos.SequenceNumber
	}
	if pos.Timestamp != nil {
		in["Timestamp"] = *pos.Timestamp
	}
	resp, err := p.callUpstream(ctx, h, "GetShardIterator", in)
	if err != nil {
		r := errorResponse(kinesisService, upstreamFailure(err))
		return "", "", &r
	}
	if resp.status != http.StatusOK {
		return "", "", &resp
	}
	var out struct{ ShardIterator string }
	if err := json.Unmarshal(resp.body, &out); err != nil {
		r := errorResponse(kinesisService, upstreamFailure(err))
		return "", "", &r
	}
	cont := pos.SequenceNumber
	switch pos.Type {
	case "AT_SEQUENCE_NUMBER":
		cont = decrement(cont)
	case "LATEST", "AT_TIMESTAMP":
		if cont, err = p.lastSequence(ctx, h, stream, shard, pos.Timestamp); err != nil {
			r := upstreamAnswer(err)
			return "", "", &r
		}
	}
	if cont == "" {
		err = p.listUpstream(ctx, h, stream, func(raw json.RawMessage) error {
			var sh struct {
				ShardId             string
				SequenceNumberRange struct{ StartingSequenceNumber string }
			}
			if json.Unmarshal(raw, &sh) == nil && sh.ShardId == shard {
				cont = sh.SequenceNumberRange.StartingSequenceNumber
			}
			return nil
		})
		if err != nil {
			r := upstreamAnswer(err)
			return "", "", &r
		}
	}
	return out.ShardIterator, cont, nil
}

// maxScanCalls bounds the GetRecords calls of lastSequence.
const maxScanCalls = 1000

// lastSequence reads the shard from its trim horizon and returns the
// sequence number of its last record (of the last that arrived before at,
// in epoch seconds, when at is set), or "" when there is none: the
// continuation of a LATEST or AT_TIMESTAMP subscription before its first
// record, as resuming after it reads what the subscription would have.
func (p *Proxy) lastSequence(ctx context.Context, h http.Header, stream streamRef, shard string, at *float64) (string, error) {
	resp, err := p.callUpstream(ctx, h, "GetShardIterator", map[string]any{"StreamName": stream.Name, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"})
	if err != nil {
		return "", err
	}
	if resp.status != http.StatusOK {
		return "", &upstreamError{resp}
	}
	var it struct{ ShardIterator *string }
	if err := json.Unmarshal(resp.body, &it); err != nil {
		return "", fmt.Errorf("GetShardIterator: %w", err)
	}
	last := ""
	for calls := 0; it.ShardIterator != nil && calls < maxScanCalls; calls++ {
		resp, err := p.callUpstream(ctx, h, "GetRecords", map[string]any{"ShardIterator": *it.ShardIterator})
		if err != nil {
			return "", err
		}
		if resp.status != http.StatusOK {
			return "", &upstreamError{resp}
		}
		var out struct {
			Records []struct {
				SequenceNumber              string
				ApproximateArrivalTimestamp float64
			}
			NextShardIterator  *string
			MillisBehindLatest int64
		}
		if err := json.Unmarshal(resp.body, &out); err != nil {
			return "", fmt.Errorf("GetRecords: %w", err)
		}
		for _, r := range out.Records {
			if at != nil && r.ApproximateArrivalTimestamp >= *at {
				return last, nil
			}
			last = r.SequenceNumber
		}
		if len(out.Records) == 0 && out.MillisBehindLatest == 0 {
			break // at the tip
		}
		it.ShardIterator = out.NextShardIterator
	}
	return last, nil
}

// decrement is the decimal sequence number one below s, or "" if s is not
// one: resuming after it resumes at s.
func decrement(s string) string {
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Sign() <= 0 {
		return ""
	}
	return n.Sub(n, big.NewInt(1)).String()
}

// subscriber feeds one subscription from the upstream shard.
type subscriber struct {
	p          *Proxy
	h          http.Header
	sub        *subscription
	stream     streamRef
	shard      string
	iter, cont string
	bytes      *bucket
	ew         *eventWriter
	lastEvent  time.Time
}

// heartbeat is how often a subscription with no new records still sends an
// (empty) event, carrying MillisBehindLatest and the continuation.
const heartbeat = time.Second

func (s *subscriber) run(ctx context.Context) {
	f := s.p.fan
	wait := func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		case <-s.sub.ended:
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.sub.ended:
			f.mu.Lock()
			reason := s.sub.reason
			f.mu.Unlock()
			if reason != nil {
				_ = s.ew.exception(reason.code, reason.message)
			}
			return
		default:
		}
		now := s.p.cfg.Now()
		if now.Sub(s.sub.started) >= f.cfg.SubscriptionLifetime {
			f.mu.Lock()
			f.stats.Expired++
			f.mu.Unlock()
			return // the stream ends without an error, as AWS ends it
		}
		if !s.p.cfg.NoLimits {
			f.mu.Lock()
			s.bytes.refill(now)
			broke := s.bytes.level <= 0
			f.mu.Unlock()
			if broke {
				wait(f.cfg.PollInterval)
				continue
			}
		}
		ev, end, err := s.read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			code, msg := codeInternalFailureException, err.Error()
			var ue *upstreamError
			if errors.As(err, &ue) {
				var body struct {
					Type    string `json:"__type"`
					Message string `json:"message"`
				}
				if json.Unmarshal(ue.resp.body, &body) == nil && body.Type == codeResourceNotFound {
					code, msg = codeResourceNotFound, body.Message
				}
			}
			_ = s.ew.exception(code, msg)
			return
		}
		if len(ev.Records) == 0 && !end && time.Since(s.lastEvent) < heartbeat {
			wait(f.cfg.PollInterval)
			continue
		}
		if fault := s.drawFault(); fault != "" {
			f.mu.Lock()
			f.stats.Faults++
			f.mu.Unlock()
			if fault == "cut" {
				s.p.log.Debug("proxy: cutting a SubscribeToShard stream", zap.String("shard", s.shard))
				panic(http.ErrAbortHandler) // resets the HTTP/2 stream, closes an HTTP/1.1 connection
			}
			_ = s.ew.exception(codeInternalFailureException, "Internal service failure (injected by proxy).")
			return
		}
		b, _ := json.Marshal(ev)
		if s.ew.event("SubscribeToShardEvent", b) != nil {
			return
		}
		s.lastEvent = time.Now()
		f.mu.Lock()
		f.stats.Events++
		f.stats.Records += int64(len(ev.Records))
		f.mu.Unlock()
		if end {
			return // the shard's end: AWS ends the subscription after ChildShards
		}
	}
}

const codeInternalFailureException = "InternalFailureException"

// shardEvent is a SubscribeToShardEvent's JSON.
type shardEvent struct {
	Records                    []json.RawMessage
	ContinuationSequenceNumber string
	MillisBehindLatest         int64
	ChildShards                []json.RawMessage `json:",omitempty"`
}

// read calls GetRecords once and returns the event it makes; end is set at
// the shard's end (the event carries ChildShards).
func (s *subscriber) read(ctx context.Context) (shardEvent, bool, error) {
	resp, err := s.p.callUpstream(ctx, s.h, "GetRecords", map[string]any{"ShardIterator": s.iter})
	if err != nil {
		return shardEvent{}, false, err
	}
	if resp.status != http.StatusOK {
		return shardEvent{}, false, &upstreamError{resp}
	}
	var out struct {
		Records            []json.RawMessage
		NextShardIterator  *string
		MillisBehindLatest int64
		ChildShards        []json.RawMessage
	}
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return shardEvent{}, false, fmt.Errorf("GetRecords: %w", err)
	}
	n := 0
	for _, raw := range out.Records {
		var rec struct {
			Data           string
			SequenceNumber string
		}
		if json.Unmarshal(raw, &rec) == nil {
			n += base64Len(rec.Data)
			s.cont = rec.SequenceNumber
		}
	}
	if n > 0 && !s.p.cfg.NoLimits {
		s.p.fan.mu.Lock()
		s.bytes.refill(s.p.cfg.Now())
		s.bytes.level -= float64(n)
		s.p.fan.mu.Unlock()
	}
	ev := shardEvent{Records: out.Records, ContinuationSequenceNumber: s.cont, MillisBehindLatest: out.MillisBehindLatest}
	if ev.Records == nil {
		ev.Records = []json.RawMessage{}
	}
	if out.NextShardIterator == nil || *out.NextShardIterator == "" {
		ev.ChildShards = out.ChildShards
		if ev.ChildShards == nil {
			ev.ChildShards = []json.RawMessage{}
		}
		return ev, true, nil
	}
	s.iter = *out.NextShardIterator
	return ev, false, nil
}

// drawFault draws the fault, if any, that replaces the next event.
func (s *subscriber) drawFault() string {
	s.p.fan.mu.Lock()
	ff := s.p.fan.faults
	s.p.fan.mu.Unlock()
	if ff.Cut == 0 && ff.InternalFailure == 0 {
		return ""
	}
	s.p.faultMu.Lock()
	defer s.p.faultMu.Unlock()
	switch {
	case ff.Cut > 0 && s.p.rng.Float64() < ff.Cut:
		return "cut"
	case ff.InternalFailure > 0 && s.p.rng.Float64() < ff.InternalFailure:
		return "internal"
	}
	return ""
}

// eventWriter writes event-stream messages (the binary framing of
// application/vnd.amazon.eventstream) and flushes each.
type eventWriter struct {
	w   http.ResponseWriter
	rc  *http.ResponseController
	enc *eventstream.Encoder
}

func (e *eventWriter) event(eventType string, payload []byte) error {
	var m eventstream.Message
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.EventMessageType))
	m.Headers.Set(eventstream.EventTypeHeader, eventstream.StringValue(eventType))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Payload = payload
	return e.write(m)
}

// exception writes an exception event, which ends the stream for the SDK
// with the typed error (such as *types.ResourceInUseException).
func (e *eventWriter) exception(code, message string) error {
	var m eventstream.Message
	m.Headers.Set(eventstream.MessageTypeHeader, eventstream.StringValue(eventstream.ExceptionMessageType))
	m.Headers.Set(eventstream.ExceptionTypeHeader, eventstream.StringValue(code))
	m.Headers.Set(eventstream.ContentTypeHeader, eventstream.StringValue("application/json"))
	m.Payload, _ = json.Marshal(struct {
		Message string `json:"message"`
	}{message})
	return e.write(m)
}

func (e *eventWriter) write(m eventstream.Message) error {
	if err := e.enc.Encode(e.w, m); err != nil {
		return err
	}
	return e.rc.Flush()
}
