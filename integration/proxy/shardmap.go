package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kinesisgo/kinesis/internal/hashkey"
)

// streamRef names a stream as a request does: by name or by ARN.
type streamRef struct {
	Name string `json:"StreamName,omitempty"`
	ARN  string `json:"StreamARN,omitempty"`
}

// name is the stream's name, taken from the ARN when only that is given.
func (r streamRef) name() string {
	if r.Name != "" {
		return r.Name
	}
	if i := strings.LastIndex(r.ARN, ":stream/"); i >= 0 {
		return r.ARN[i+len(":stream/"):]
	}
	return r.ARN
}

// streamKey identifies a stream across the proxy's caches: the region the
// request was signed for (the emulator keeps separate streams per region)
// and the stream name.
func streamKey(h http.Header, ref streamRef) string {
	return signingRegion(h) + "/" + ref.name()
}

// signingRegion returns the region of a SigV4 Authorization header's
// credential scope, or "" when there is none.
func signingRegion(h http.Header) string {
	auth := h.Get("Authorization")
	i := strings.Index(auth, "Credential=")
	if i < 0 {
		return ""
	}
	cred := auth[i+len("Credential="):]
	if j := strings.IndexAny(cred, ", "); j >= 0 {
		cred = cred[:j]
	}
	parts := strings.Split(cred, "/") // AKID/date/region/service/aws4_request
	if len(parts) < 3 {
		return ""
	}
	return parts[2]
}

type shardInfo struct {
	id  string
	rng hashkey.Range
}

// shardMap is the open shards of a stream, sorted by starting hash key.
type shardMap struct {
	open []shardInfo
}

// find returns the open shard whose hash range holds k.
func (m *shardMap) find(k hashkey.Key) (shardInfo, bool) {
	i := sort.Search(len(m.open), func(i int) bool { return m.open[i].rng.Start.Cmp(k) > 0 })
	if i == 0 {
		return shardInfo{}, false
	}
	s := m.open[i-1]
	return s, s.rng.Contains(k)
}

// upstreamError is a non-200 answer from the upstream, passed to the caller.
type upstreamError struct{ resp response }

func (e *upstreamError) Error() string {
	return fmt.Sprintf("upstream answered HTTP %d: %.200s", e.resp.status, e.resp.body)
}

// shardMaps caches the shard maps of the streams the proxy has seen.
type shardMaps struct {
	p   *Proxy
	ttl time.Duration

	mu      sync.Mutex
	entries map[string]*mapEntry
}

type mapEntry struct {
	mu            sync.Mutex // held while listing, so that one caller lists for all
	m             *shardMap
	fetched       time.Time
	volatileUntil time.Time // after resharding: list often until then
}

// reshardWindow is how long after a resharding call the shard map is listed
// every reshardTTL, since the emulator reshards asynchronously.
const (
	reshardWindow = 30 * time.Second
	reshardTTL    = 250 * time.Millisecond
)

func newShardMaps(p *Proxy, ttl time.Duration) *shardMaps {
	return &shardMaps{p: p, ttl: ttl, entries: make(map[string]*mapEntry)}
}

func (s *shardMaps) entry(key string) *mapEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.entries[key]
	if !ok {
		e = &mapEntry{}
		s.entries[key] = e
	}
	return e
}

// get returns the stream's shard map, listing the shards when the cached
// map is missing, stale, or older than notBefore.
func (s *shardMaps) get(ctx context.Context, h http.Header, ref streamRef, notBefore time.Time) (*shardMap, error) {
	e := s.entry(streamKey(h, ref))
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	ttl := s.ttl
	if now.Before(e.volatileUntil) {
		ttl = min(ttl, reshardTTL)
	}
	if e.m != nil && now.Sub(e.fetched) < ttl && !e.fetched.Before(notBefore) {
		return e.m, nil
	}
	m, err := s.list(ctx, h, ref)
	if err != nil {
		return nil, err
	}
	e.m, e.fetched = m, time.Now()
	return m, nil
}

// resharded marks the shard map of the stream named in a request body as
// stale, and to be listed often for a while.
func (s *shardMaps) resharded(h http.Header, body []byte) {
	var ref streamRef
	if json.Unmarshal(body, &ref) != nil {
		return
	}
	e := s.entry(streamKey(h, ref))
	e.mu.Lock()
	defer e.mu.Unlock()
	e.fetched = time.Time{}
	e.volatileUntil = time.Now().Add(reshardWindow)
}

// listUpstream calls ListShards upstream with the caller's credentials and
// no filter, page by page, and hands each shard's JSON to fn.
func (p *Proxy) listUpstream(ctx context.Context, h http.Header, ref streamRef, fn func(json.RawMessage) error) error {
	hdr := h.Clone()
	hdr.Set("X-Amz-Target", kinesisTargetPrefix+"ListShards")
	hdr.Set("Content-Type", kinesisService.contentType())
	var token string
	for page := 0; ; page++ {
		if page > 10000 {
			return fmt.Errorf("ListShards %s: too many pages", ref.name())
		}
		var req any = ref
		if token != "" {
			req = struct{ NextToken string }{token}
		}
		body, _ := json.Marshal(req)
		resp, err := p.forward(ctx, kinesisService, hdr, body)
		if err != nil {
			return err
		}
		if resp.status != http.StatusOK {
			return &upstreamError{resp}
		}
		var out struct {
			Shards    []json.RawMessage
			NextToken *string
		}
		if err := json.Unmarshal(resp.body, &out); err != nil {
			return fmt.Errorf("ListShards %s: %w", ref.name(), err)
		}
		for _, raw := range out.Shards {
			if err := fn(raw); err != nil {
				return err
			}
		}
		if out.NextToken == nil || *out.NextToken == "" {
			return nil
		}
		token = *out.NextToken
	}
}

// list reads the stream's open shards and their hash key ranges upstream.
func (s *shardMaps) list(ctx context.Context, h http.Header, ref streamRef) (*shardMap, error) {
	m := &shardMap{}
	err := s.p.listUpstream(ctx, h, ref, func(raw json.RawMessage) error {
		var sh struct {
			ShardId      string
			HashKeyRange struct {
				StartingHashKey, EndingHashKey string
			}
			SequenceNumberRange struct {
				EndingSequenceNumber *string
			}
		}
		if err := json.Unmarshal(raw, &sh); err != nil {
			return fmt.Errorf("ListShards %s: bad shard %.200s", ref.name(), raw)
		}
		if sh.SequenceNumberRange.EndingSequenceNumber != nil {
			return nil // closed
		}
		r, err := hashkey.ParseRange(sh.HashKeyRange.StartingHashKey, sh.HashKeyRange.EndingHashKey)
		if err != nil {
			return fmt.Errorf("ListShards %s: shard %s: %w", ref.name(), sh.ShardId, err)
		}
		m.open = append(m.open, shardInfo{id: sh.ShardId, rng: r})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(m.open, func(i, j int) bool { return m.open[i].rng.Start.Cmp(m.open[j].rng.Start) < 0 })
	return m, nil
}

// iterators remembers which shard each shard iterator handed out through
// the proxy reads, so that GetRecords can be charged to its shard.
type iterators struct {
	mu        sync.Mutex
	m         map[string]iterEntry
	lastPrune time.Time
}

type iterEntry struct {
	shardKey string // stream key + "/" + shard ID
	shard    string
	stream   string
	at       time.Time
}

// iteratorLife is how long a shard iterator stays valid in Kinesis.
const iteratorLife = 5 * time.Minute

func newIterators() *iterators { return &iterators{m: make(map[string]iterEntry)} }

func (it *iterators) put(iter string, e iterEntry) {
	if iter == "" {
		return
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	now := time.Now()
	e.at = now
	it.m[iter] = e
	if now.Sub(it.lastPrune) > time.Minute {
		it.lastPrune = now
		for k, v := range it.m {
			if now.Sub(v.at) > iteratorLife {
				delete(it.m, k)
			}
		}
	}
}

func (it *iterators) get(iter string) (iterEntry, bool) {
	it.mu.Lock()
	defer it.mu.Unlock()
	e, ok := it.m[iter]
	return e, ok
}
