package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultRetention is the retention period Config.ShardLifecycle simulates
// by default: 24 hours, the Kinesis default.
const DefaultRetention = 24 * time.Hour

// Errors of ExpireShard.
var (
	errLifecycleOff = errors.New("Config.ShardLifecycle is off")
	errUnknown      = errors.New("not known to the proxy")
	errShardOpen    = errors.New("shard is open: only a closed shard ages out")
)

// lifecycles is the shard lifecycle of every stream the proxy has seen
// under Config.ShardLifecycle: when each shard was created and closed, on
// the proxy's clock, and which shards were aged out by ExpireShard.
type lifecycles struct {
	p *Proxy

	mu      sync.Mutex
	streams map[string]*streamLife // by streamKey
}

// streamLife is one stream's shard lifecycle.
type streamLife struct {
	mu      sync.Mutex // held while listing, so that one caller lists for all
	ref     streamRef
	header  http.Header // of the latest request naming the stream; ExpireShard lists with it
	created time.Time   // zero until known
	shards  map[string]*lifeShard
	// closing holds the time a SplitShard or MergeShards call naming the
	// shard passed through the proxy, until the shard is seen closed;
	// reshardAll the time of the latest UpdateShardCount.
	closing    map[string]time.Time
	reshardAll time.Time
}

func newLifecycles(p *Proxy) *lifecycles {
	return &lifecycles{p: p, streams: make(map[string]*streamLife)}
}

func newStreamLife(ref streamRef) *streamLife {
	return &streamLife{ref: ref, shards: make(map[string]*lifeShard), closing: make(map[string]time.Time)}
}

// stream returns the lifecycle of the stream ref names in a request signed
// for h's region, and remembers h for later listings.
func (l *lifecycles) stream(h http.Header, ref streamRef) *streamLife {
	key := streamKey(h, ref)
	l.mu.Lock()
	s, ok := l.streams[key]
	if !ok {
		s = newStreamLife(ref)
		l.streams[key] = s
	}
	l.mu.Unlock()
	s.mu.Lock()
	s.header = h.Clone()
	s.mu.Unlock()
	return s
}

// named returns the lifecycles of the streams called name, in every region.
func (l *lifecycles) named(name string) []*streamLife {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*streamLife
	for _, s := range l.streams {
		if s.ref.name() == name {
			out = append(out, s)
		}
	}
	return out
}

// passed records a successful control-plane call that changes shards:
// CreateStream starts a stream's lifecycle at the proxy's now, DeleteStream
// ends it, and SplitShard, MergeShards and UpdateShardCount give the
// shards they close their closing time.
func (l *lifecycles) passed(op string, h http.Header, body []byte) {
	var in struct {
		streamRef
		ShardToSplit, ShardToMerge, AdjacentShardToMerge string
	}
	if json.Unmarshal(body, &in) != nil {
		return
	}
	now := l.p.cfg.Now()
	key := streamKey(h, in.streamRef)
	switch op {
	case "CreateStream":
		s := newStreamLife(in.streamRef)
		s.created, s.header = now, h.Clone()
		l.mu.Lock()
		l.streams[key] = s
		l.mu.Unlock()
		return
	case "DeleteStream":
		l.mu.Lock()
		delete(l.streams, key)
		l.mu.Unlock()
		return
	}
	s := l.stream(h, in.streamRef)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch op {
	case "SplitShard":
		s.closing[in.ShardToSplit] = now
	case "MergeShards":
		s.closing[in.ShardToMerge] = now
		s.closing[in.AdjacentShardToMerge] = now
	case "UpdateShardCount":
		s.reshardAll = now
	}
}

// refresh lists the stream's shards upstream (every shard, page by page)
// and records the shards it sees for the first time and the ones it first
// sees closed. The caller holds s.mu.
func (l *lifecycles) refresh(ctx context.Context, s *streamLife) error {
	upstream, err := l.listAll(ctx, s.header, s.ref)
	if err != nil {
		return err
	}
	listed := make(map[string]bool, len(upstream))
	for _, u := range upstream {
		listed[u.id] = true
		// A known shard listed open after it closed, or with other parents,
		// is a shard of a new stream of the same name, created and deleted
		// without the proxy seeing it: start the lifecycle again.
		if sh := s.shards[u.id]; sh != nil && ((!sh.open() && !u.closed) || !slices.Equal(sh.parents, u.parents)) {
			s.created, s.reshardAll = time.Time{}, time.Time{}
			s.shards, s.closing = make(map[string]*lifeShard), make(map[string]time.Time)
			break
		}
	}
	for id := range s.shards {
		if !listed[id] {
			delete(s.shards, id) // gone upstream
		}
	}
	if s.created.IsZero() {
		s.created = l.streamCreated(ctx, s.header, s.ref)
	}
	now := l.p.cfg.Now()
	// Shard IDs grow with creation, so parents come before their children.
	sort.Slice(upstream, func(i, j int) bool { return upstream[i].id < upstream[j].id })
	for _, u := range upstream {
		sh, known := s.shards[u.id]
		if !known {
			sh = &lifeShard{id: u.id, parents: u.parents}
			s.shards[u.id] = sh
			// A shard without a parent is one the stream was created with. A
			// child is created when its parents close.
			sh.created = s.created
			if len(u.parents) > 0 {
				sh.created = time.Time{}
				for _, pid := range u.parents {
					if par := s.shards[pid]; par != nil && !par.open() && par.closed.After(sh.created) {
						sh.created = par.closed
					}
				}
				if sh.created.IsZero() {
					sh.created = now
				}
			}
		}
		sh.raw = u.raw
		if u.closed && sh.open() {
			t, ok := s.closing[u.id]
			switch {
			case ok:
				delete(s.closing, u.id)
			case !s.reshardAll.IsZero() && !s.reshardAll.Before(sh.created):
				t = s.reshardAll
			default:
				t = now
			}
			if t.Before(sh.created) {
				t = sh.created
			}
			sh.closed = t
		}
	}
	return nil
}

// sorted returns the stream's shards sorted by ID. The caller holds s.mu.
func (s *streamLife) sorted() []*lifeShard {
	out := make([]*lifeShard, 0, len(s.shards))
	for _, sh := range s.shards {
		out = append(out, sh)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// upstreamShard is a shard as the upstream lists it.
type upstreamShard struct {
	id      string
	parents []string
	closed  bool
	raw     json.RawMessage
}

// listAll calls ListShards upstream with no filter, page by page.
func (l *lifecycles) listAll(ctx context.Context, h http.Header, ref streamRef) ([]upstreamShard, error) {
	var out []upstreamShard
	err := l.p.listUpstream(ctx, h, ref, func(raw json.RawMessage) error {
		var sh struct {
			ShardId, ParentShardId, AdjacentParentShardId string
			SequenceNumberRange                           struct{ EndingSequenceNumber *string }
		}
		if err := json.Unmarshal(raw, &sh); err != nil || sh.ShardId == "" {
			return fmt.Errorf("ListShards %s: bad shard %.200s", ref.name(), raw)
		}
		u := upstreamShard{id: sh.ShardId, closed: sh.SequenceNumberRange.EndingSequenceNumber != nil, raw: raw}
		for _, pid := range []string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if pid != "" {
				u.parents = append(u.parents, pid)
			}
		}
		out = append(out, u)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// streamCreated is the creation time of a stream whose CreateStream did not
// pass through the proxy: DescribeStreamSummary's StreamCreationTimestamp,
// or the proxy's now if that is later (the proxy's clock may not be the
// upstream's) or unknown.
func (l *lifecycles) streamCreated(ctx context.Context, h http.Header, ref streamRef) time.Time {
	now := l.p.cfg.Now()
	hdr := h.Clone()
	hdr.Set("X-Amz-Target", kinesisTargetPrefix+"DescribeStreamSummary")
	hdr.Set("Content-Type", kinesisService.contentType())
	body, _ := json.Marshal(ref)
	resp, err := l.p.forward(ctx, kinesisService, hdr, body)
	if err != nil || resp.status != http.StatusOK {
		return now
	}
	var out struct {
		StreamDescriptionSummary struct{ StreamCreationTimestamp *float64 }
	}
	if json.Unmarshal(resp.body, &out) != nil || out.StreamDescriptionSummary.StreamCreationTimestamp == nil {
		return now
	}
	if t := epoch(*out.StreamDescriptionSummary.StreamCreationTimestamp); t.Before(now) {
		return t
	}
	return now
}

// listShards answers ListShards under Config.ShardLifecycle from the
// upstream's full list and the shards' recorded lifetimes.
func (p *Proxy) listShards(ctx context.Context, h http.Header, body []byte) response {
	var in listShardsInput
	if err := json.Unmarshal(body, &in); err != nil {
		return p.bad(badRequest(codeSerialization, "ListShards: %v", err))
	}
	q, page, e := in.parse(p.cfg.Now())
	if e != nil {
		return p.bad(e)
	}
	ref := streamRef{Name: q.Stream}
	if strings.HasPrefix(q.Stream, "arn:") {
		ref = streamRef{ARN: q.Stream}
	}
	s := p.lives.stream(h, ref)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := p.lives.refresh(ctx, s); err != nil {
		return upstreamAnswer(err)
	}
	selected := selectShards(s.sorted(), q, s.created, p.cfg.Now(), p.cfg.Retention)
	return jsonResponse(kinesisService, listPage(selected, q, page))
}

// upstreamAnswer is the answer to a call whose upstream lookup failed: the
// upstream's own error response, or InternalFailure.
func upstreamAnswer(err error) response {
	var ue *upstreamError
	if errors.As(err, &ue) {
		return ue.resp
	}
	return errorResponse(kinesisService, upstreamFailure(err))
}

// agedOut reports whether the shard of a stream has aged out, listing the
// stream's shards first unless the proxy knows the shard closed already
// (a shard that is open, or unknown, may have closed since).
func (p *Proxy) agedOut(ctx context.Context, h http.Header, ref streamRef, shardID string, list bool) (bool, error) {
	s := p.lives.stream(h, ref)
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shards[shardID]
	if list && (sh == nil || sh.open()) {
		if err := p.lives.refresh(ctx, s); err != nil {
			return false, err
		}
		sh = s.shards[shardID]
	}
	return sh != nil && sh.agedOut(p.cfg.Now(), p.cfg.Retention), nil
}

// shardGone is the answer for a shard that has aged out. Kinesis deletes a
// shard once its data is past the retention period; calls naming it get
// ResourceNotFoundException.
func shardGone(shardID, stream string) response {
	return errorResponse(kinesisService, resourceNotFound("Shard %s in stream %s does not exist.", shardID, stream))
}

// ExpireShard ages a closed shard of the stream out at once, as if its data
// had passed the retention period: ListShards no longer lists it under any
// filter, the trim horizon moves past its closing, and GetShardIterator,
// GetRecords and SubscribeToShard calls for it answer
// ResourceNotFoundException. It applies in every region where a request
// naming the stream passed through the proxy, and lists the stream's shards
// upstream (with that request's headers) to check that the shard is
// closed. It needs Config.ShardLifecycle, and fails for an open shard or
// one the proxy cannot find.
func (p *Proxy) ExpireShard(ctx context.Context, stream, shardID string) error {
	if !p.cfg.ShardLifecycle {
		return fmt.Errorf("proxy: ExpireShard: %w", errLifecycleOff)
	}
	lives := p.lives.named(stream)
	if len(lives) == 0 {
		return fmt.Errorf("proxy: ExpireShard: stream %s: %w (no request naming it passed through)", stream, errUnknown)
	}
	found := false
	for _, s := range lives {
		err := func() error {
			s.mu.Lock()
			defer s.mu.Unlock()
			if err := p.lives.refresh(ctx, s); err != nil {
				var ue *upstreamError
				if errors.As(err, &ue) && ue.resp.status == http.StatusBadRequest {
					return nil // such as ResourceNotFoundException: the stream is gone in that region
				}
				return err
			}
			sh := s.shards[shardID]
			switch {
			case sh == nil:
				return nil
			case sh.open():
				return fmt.Errorf("proxy: ExpireShard: stream %s, %s: %w", stream, shardID, errShardOpen)
			}
			sh.expired, found = true, true
			return nil
		}()
		if err != nil {
			return err
		}
	}
	if !found {
		return fmt.Errorf("proxy: ExpireShard: stream %s: shard %s: %w", stream, shardID, errUnknown)
	}
	p.log.Debug("proxy: shard expired", zap.String("stream", stream), zap.String("shard", shardID))
	return nil
}

// consumerStream is the stream of a consumer ARN
// (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CONSUMER:CREATED).
func consumerStream(arn string) streamRef {
	name := streamRef{ARN: arn}.name()
	if i := strings.Index(name, "/consumer/"); i >= 0 {
		name = name[:i]
	}
	return streamRef{Name: name}
}

// serveExpireShard serves POST /expire-shard?stream=NAME&shard=ID, the
// control call of ExpireShard: 204 No Content when done.
func (p *Proxy) serveExpireShard(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "proxy: /expire-shard takes POST", http.StatusMethodNotAllowed)
		return
	}
	stream, shard := r.URL.Query().Get("stream"), r.URL.Query().Get("shard")
	if stream == "" || shard == "" {
		http.Error(w, "proxy: /expire-shard needs the stream and shard query parameters", http.StatusBadRequest)
		return
	}
	err := p.ExpireShard(r.Context(), stream, shard)
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, errUnknown):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, errShardOpen):
		http.Error(w, err.Error(), http.StatusConflict)
	default:
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
}
