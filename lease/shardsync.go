package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/metricreg"
	"github.com/kinesisgo/kinesis/internal/streamref"
)

// KinesisAPI is the part of the Kinesis client the shard syncer calls:
// listing the stream's shards. *kinesis.Client implements it.
type KinesisAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// ShardSyncConfig configures a ShardSyncer.
type ShardSyncConfig struct {
	// Store is the lease table. Required.
	Store Store
	// Kinesis is the Kinesis client, with which the stream's shards are
	// listed. Required.
	Kinesis KinesisAPI
	// Stream is the stream's name or ARN. Required.
	Stream string
	// InitialPosition is where processing starts in a shard that has no
	// leased ancestor: checkpoint.Latest, TrimHorizon or AtTimestamp.
	// Descendants of leased shards always start at TrimHorizon. Default
	// Latest.
	InitialPosition checkpoint.Position
	// InitialTimestamp is the time for InitialPosition AtTimestamp
	// (required then, unused otherwise).
	InitialTimestamp time.Time
	// Interval is how often Run syncs. Default 60s.
	Interval time.Duration
	// Leader, when set, tells whether this worker leads the fleet
	// (Coordinator.Leading): Run syncs only then, since a sync reads the
	// whole lease table; on the other workers it only checks that the
	// stream still exists (one ListShards), so that a deleted stream stops
	// every worker. Default nil: Run always syncs.
	Leader func() bool
	// Logger receives the syncer's logs. Default: none.
	Logger *zap.Logger
	// Metrics registers the syncer's metrics (kinesis_lease_*). Default:
	// none.
	Metrics prometheus.Registerer
}

func (cfg ShardSyncConfig) withDefaults() ShardSyncConfig {
	if cfg.InitialPosition == "" {
		cfg.InitialPosition = checkpoint.Latest
	}
	if cfg.Interval == 0 {
		cfg.Interval = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return cfg
}

// Validate reports the first invalid field of cfg, defaults applied.
func (cfg ShardSyncConfig) Validate() error {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Store == nil:
		return errors.New("lease: ShardSyncConfig.Store is required")
	case cfg.Kinesis == nil:
		return errors.New("lease: ShardSyncConfig.Kinesis is required")
	case cfg.Stream == "":
		return errors.New("lease: ShardSyncConfig.Stream is required")
	case !cfg.InitialPosition.IsStart():
		return fmt.Errorf("lease: ShardSyncConfig.InitialPosition %q is not %s, %s or %s", cfg.InitialPosition, checkpoint.Latest, checkpoint.TrimHorizon, checkpoint.AtTimestamp)
	case cfg.InitialPosition == checkpoint.AtTimestamp && cfg.InitialTimestamp.IsZero():
		return errors.New("lease: ShardSyncConfig.InitialTimestamp is required with InitialPosition AT_TIMESTAMP")
	case cfg.Interval < 0:
		return fmt.Errorf("lease: ShardSyncConfig.Interval %v is negative", cfg.Interval)
	}
	if _, err := streamref.Parse(cfg.Stream); err != nil {
		return fmt.Errorf("lease: ShardSyncConfig.Stream: %w", err)
	}
	return nil
}

// ShardSyncer keeps the lease table in line with the stream's shards: it
// creates the leases of shards that have none, and deletes finished leases
// once their children have started and they have no parent lease left
// (docs/design.md, "Shard lineage"). Several workers may sync the same
// table at once: creates and deletes are conditional.
type ShardSyncer struct {
	cfg     ShardSyncConfig
	stream  streamref.Ref
	log     *zap.Logger
	retry   backoff.Policy // between attempts of a failed call
	now     func() time.Time
	created prometheus.Counter
	deleted prometheus.Counter
}

// NewShardSyncer checks cfg and returns a syncer.
func NewShardSyncer(cfg ShardSyncConfig) (*ShardSyncer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	stream, _ := streamref.Parse(cfg.Stream) // checked by Validate
	s := &ShardSyncer{
		cfg:    cfg,
		stream: stream,
		log:    cfg.Logger,
		retry:  storeBackoff,
		now:    time.Now,
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_created_total", Help: "Leases created for shards that had none.",
		}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kinesis_lease_deleted_total", Help: "Finished leases deleted.",
		}),
	}
	if cfg.Metrics != nil {
		s.created = metricreg.Register(cfg.Metrics, s.created)
		s.deleted = metricreg.Register(cfg.Metrics, s.deleted)
	}
	return s, nil
}

// Run syncs at once and then every Interval until ctx ends; it returns nil
// then. A sync that failed (after the retries of each call within it) is
// logged and made again at the next interval, except when the stream no
// longer exists: Run then returns that error (it wraps Kinesis's
// ResourceNotFoundException).
func (s *ShardSyncer) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		sync := s.Sync
		if s.cfg.Leader != nil && !s.cfg.Leader() {
			sync = s.checkStream
		}
		if err := sync(ctx); err != nil && ctx.Err() == nil {
			var gone *kintypes.ResourceNotFoundException
			if errors.As(err, &gone) {
				return fmt.Errorf("stream %s: %w", s.stream, err)
			}
			s.log.Warn("shard sync failed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// checkStream lists the stream's shards, to learn whether it still exists.
func (s *ShardSyncer) checkStream(ctx context.Context) error {
	_, err := s.listShards(ctx, nil)
	return err
}

// Sync runs one shard sync: it lists every shard of the stream (so that
// the lineage of every shard is complete, whatever the initial position),
// creates the missing leases and deletes the finished ones that are no
// longer needed. Which shards without a leased ancestor get leases is
// chosen by the initial position. Each call that fails with a retryable
// error (throttling, a transient fault) is retried a few times with
// backoff; a sync that fails stops there, and the next one carries on
// (creates and deletes are conditional, so making them again is harmless).
func (s *ShardSyncer) Sync(ctx context.Context) error {
	var leases []Lease
	err := withRetry(ctx, s.retry, func() (err error) {
		leases, err = s.cfg.Store.List(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("shard sync: %w", err)
	}
	// No filter: every shard within the retention period, closed ones
	// included. The filters leave out closed shards (AT_TRIM_HORIZON lists
	// only the shards open at the trim horizon, not their children; AWS
	// Kinesis API reference, ShardFilter), and without them a finished
	// shard whose lease was deleted looks as if it had no descendants.
	shards, err := s.listShards(ctx, nil)
	if err != nil {
		return fmt.Errorf("shard sync: %w", err)
	}
	selected, err := s.initialShards(ctx, shards)
	if err != nil {
		return fmt.Errorf("shard sync: %w", err)
	}
	leased := make(map[string]Lease, len(leases))
	for _, l := range leases {
		leased[l.Key] = l
	}
	g := newShardGraph(shards)
	for _, l := range leases {
		g.addChildren(l.Key, l.ChildShardIDs)
	}
	// A lease created for a parent of a leased child can give its other
	// children a leased ancestor, and the other way round: repeat until a
	// pass creates none.
	for created := true; created; {
		created = false
		for _, sh := range g.parentsFirst() {
			id := aws.ToString(sh.ShardId)
			if _, ok := leased[id]; ok || g.hasStartedDescendant(id, leased) {
				continue // leased, or processed already
			}
			l := leaseForShard(sh, s.cfg.InitialPosition)
			switch {
			case g.hasLeasedAncestor(id, leased):
				l.Checkpoint = string(checkpoint.TrimHorizon)
			case selected[id]:
			case g.parentOfWaitingChild(id, leased):
				// A child that starts at TRIM_HORIZON waits for this parent
				// (a merge child is leased when its first parent ends): it
				// is read first, from the initial position.
			default:
				continue // outside the initial position, and no leased ancestor
			}
			if l.Checkpoint == string(checkpoint.Latest) {
				// The time the application first saw the shard: a lease
				// moved before its first checkpoint resumes from here
				// (Lease.LatestTimestamp).
				l.LatestTimestamp = s.now()
			}
			var made Lease
			err := withRetry(ctx, s.retry, func() (err error) {
				made, err = s.cfg.Store.Create(ctx, l)
				return err
			})
			switch {
			case err == nil:
				s.created.Inc()
				s.log.Info("lease created", zap.String("lease", id), zap.String("checkpoint", l.Checkpoint))
				leased[id] = made
				created = true
			case errors.Is(err, ErrExists): // created by another syncer, or by a retried call of ours
				leased[id] = l
			default:
				return fmt.Errorf("shard sync: %w", err)
			}
		}
	}
	return s.cleanup(ctx, leased, g)
}

// cleanup deletes finished leases whose children all have leases that
// started (checkpoint past the initial position) and whose parents have no
// lease left.
func (s *ShardSyncer) cleanup(ctx context.Context, leased map[string]Lease, g *shardGraph) error {
	var errs []error
	keys := make([]string, 0, len(leased))
	for k := range leased {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		l := leased[k]
		if !l.Finished() {
			continue
		}
		children := slices.Clone(l.ChildShardIDs)
		for _, c := range g.children[k] {
			if !slices.Contains(children, c) {
				children = append(children, c)
			}
		}
		if len(children) == 0 {
			continue
		}
		ready := true
		for _, c := range children {
			cl, ok := leased[c]
			if !ok || cl.Checkpoint == "" || checkpoint.Position(cl.Checkpoint).IsStart() {
				ready = false
				break
			}
		}
		for _, p := range l.ParentShardIDs {
			if _, ok := leased[p]; ok {
				ready = false
			}
		}
		if !ready {
			continue
		}
		if err := withRetry(ctx, s.retry, func() error { return s.cfg.Store.Delete(ctx, l) }); err != nil {
			if !errors.Is(err, ErrConflict) { // changed or deleted meanwhile (by another syncer, or a retried call of ours)
				errs = append(errs, err)
			}
			continue
		}
		delete(leased, k)
		s.deleted.Inc()
		s.log.Info("finished lease deleted", zap.String("lease", k))
	}
	return errors.Join(errs...)
}

// CreateChildLeases creates the leases of a closed shard's children, as
// GetRecords reported them, at once (checkpoint TRIM_HORIZON), so they can
// be taken without waiting for the next sync. Leases that exist already
// are left alone. It makes each call once (the caller retries it: leases
// it created already are left alone then).
func CreateChildLeases(ctx context.Context, store Store, children []kintypes.ChildShard) error {
	for _, c := range children {
		if aws.ToString(c.ShardId) == "" {
			return errors.New("create child leases: a child shard has no ShardId")
		}
		l := Lease{Key: aws.ToString(c.ShardId), Checkpoint: string(checkpoint.TrimHorizon), ParentShardIDs: slices.Clone(c.ParentShards)}
		if c.HashKeyRange != nil {
			l.StartingHashKey = aws.ToString(c.HashKeyRange.StartingHashKey)
			l.EndingHashKey = aws.ToString(c.HashKeyRange.EndingHashKey)
		}
		if _, err := store.Create(ctx, l); err != nil && !errors.Is(err, ErrExists) {
			return fmt.Errorf("create child lease %q: %w", l.Key, err)
		}
	}
	return nil
}

// ParentsDone reports whether every parent of l has a lease that is done
// as far as the lease table tells: checkpointed at SHARD_END or no longer
// there. A child shard must not be processed before. A missing parent
// lease is done only if the stream no longer lists the parent (it aged
// out), which ParentsDone does not check: a child at TRIM_HORIZON whose
// parent has no lease but is still listed must wait for the shard sync to
// lease that parent, and for it to end. It makes each call once.
func ParentsDone(ctx context.Context, store Store, l Lease) (bool, error) {
	for _, p := range l.ParentShardIDs {
		pl, err := store.Get(ctx, p)
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return false, fmt.Errorf("parents of lease %q: %w", l.Key, err)
		case !pl.Finished():
			return false, nil
		}
	}
	return true, nil
}

func leaseForShard(sh kintypes.Shard, start checkpoint.Position) Lease {
	l := Lease{Key: aws.ToString(sh.ShardId), Checkpoint: string(start)}
	for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
		if aws.ToString(p) != "" {
			l.ParentShardIDs = append(l.ParentShardIDs, *p)
		}
	}
	if sh.HashKeyRange != nil {
		l.StartingHashKey = aws.ToString(sh.HashKeyRange.StartingHashKey)
		l.EndingHashKey = aws.ToString(sh.HashKeyRange.EndingHashKey)
	}
	return l
}

// listShards lists every shard filter selects (every shard when filter is
// nil), page by page; a page that fails with a retryable error is asked
// for again.
func (s *ShardSyncer) listShards(ctx context.Context, filter *kintypes.ShardFilter) ([]kintypes.Shard, error) {
	in := &kinesis.ListShardsInput{ShardFilter: filter, StreamName: s.stream.Name(), StreamARN: s.stream.ARN()}
	var shards []kintypes.Shard
	for {
		var out *kinesis.ListShardsOutput
		err := withRetry(ctx, s.retry, func() (err error) {
			out, err = s.cfg.Kinesis.ListShards(ctx, in)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("list shards: %w", err)
		}
		shards = append(shards, out.Shards...)
		if aws.ToString(out.NextToken) == "" {
			return shards, nil
		}
		// With NextToken, the stream and filter must be left out.
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// initialShards returns the shards the initial position selects among
// those without a leased ancestor: with TRIM_HORIZON the shards whose
// parents are not listed (they were open at the trim horizon), otherwise
// the shards the position's ShardFilter lists (AT_LATEST: the open ones;
// FROM_TIMESTAMP: those open at the timestamp or later).
func (s *ShardSyncer) initialShards(ctx context.Context, all []kintypes.Shard) (map[string]bool, error) {
	selected := make(map[string]bool, len(all))
	if s.cfg.InitialPosition == checkpoint.TrimHorizon {
		listed := make(map[string]bool, len(all))
		for _, sh := range all {
			listed[aws.ToString(sh.ShardId)] = true
		}
		for _, sh := range all {
			if !listed[aws.ToString(sh.ParentShardId)] && !listed[aws.ToString(sh.AdjacentParentShardId)] {
				selected[aws.ToString(sh.ShardId)] = true
			}
		}
		return selected, nil
	}
	shards, err := s.listShards(ctx, s.shardFilter())
	if err != nil {
		return nil, err
	}
	for _, sh := range shards {
		selected[aws.ToString(sh.ShardId)] = true
	}
	return selected, nil
}

// shardFilter is the ShardFilter of the initial position LATEST or
// AT_TIMESTAMP.
func (s *ShardSyncer) shardFilter() *kintypes.ShardFilter {
	switch s.cfg.InitialPosition {
	case checkpoint.AtTimestamp:
		return &kintypes.ShardFilter{Type: kintypes.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(s.cfg.InitialTimestamp)}
	default:
		return &kintypes.ShardFilter{Type: kintypes.ShardFilterTypeAtLatest}
	}
}

// shardGraph is the lineage of the listed shards.
type shardGraph struct {
	byID     map[string]kintypes.Shard
	children map[string][]string
	order    []string
}

func newShardGraph(shards []kintypes.Shard) *shardGraph {
	g := &shardGraph{byID: make(map[string]kintypes.Shard, len(shards)), children: make(map[string][]string)}
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		g.byID[id] = sh
		g.order = append(g.order, id)
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if aws.ToString(p) != "" {
				g.children[*p] = append(g.children[*p], id)
			}
		}
	}
	slices.Sort(g.order)
	return g
}

func (g *shardGraph) parents(id string) []string {
	sh := g.byID[id]
	var ps []string
	for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
		if aws.ToString(p) != "" {
			ps = append(ps, *p)
		}
	}
	return ps
}

// parentsFirst returns the listed shards ordered so that each comes after
// its listed parents.
func (g *shardGraph) parentsFirst() []kintypes.Shard {
	done := make(map[string]bool, len(g.byID))
	var out []kintypes.Shard
	var visit func(id string)
	visit = func(id string) {
		if done[id] {
			return
		}
		done[id] = true
		for _, p := range g.parents(id) {
			if _, ok := g.byID[p]; ok {
				visit(p)
			}
		}
		out = append(out, g.byID[id])
	}
	for _, id := range g.order {
		visit(id)
	}
	return out
}

func (g *shardGraph) hasLeasedAncestor(id string, leased map[string]Lease) bool {
	for _, p := range g.parents(id) {
		if _, ok := leased[p]; ok {
			return true
		}
		if _, ok := g.byID[p]; ok && g.hasLeasedAncestor(p, leased) {
			return true
		}
	}
	return false
}

// hasStartedDescendant reports whether a descendant of the shard has a
// lease that started (checkpoint past the start position, or SHARD_END):
// the shard was processed then, and its lease, if it had one, may have been
// deleted. A descendant whose lease has not started yet does not count:
// its parents may still have to be read (a merge child is leased when its
// first parent ends).
func (g *shardGraph) hasStartedDescendant(id string, leased map[string]Lease) bool {
	seen := map[string]bool{}
	var visit func(id string) bool
	visit = func(id string) bool {
		for _, c := range g.children[id] {
			if seen[c] {
				continue
			}
			seen[c] = true
			if l, ok := leased[c]; ok && started(l) {
				return true
			}
			if visit(c) {
				return true
			}
		}
		return false
	}
	return visit(id)
}

// parentOfWaitingChild reports whether a child of the shard has a lease
// that has not started and starts at TRIM_HORIZON: it waits for the shard.
func (g *shardGraph) parentOfWaitingChild(id string, leased map[string]Lease) bool {
	for _, c := range g.children[id] {
		if l, ok := leased[c]; ok && (l.Checkpoint == "" || l.Checkpoint == string(checkpoint.TrimHorizon)) {
			return true
		}
	}
	return false
}

// addChildren records children of the shard that a lease names (the
// ChildShardIDs a parent records at its end), listed or not.
func (g *shardGraph) addChildren(id string, children []string) {
	for _, c := range children {
		if c != "" && !slices.Contains(g.children[id], c) {
			g.children[id] = append(g.children[id], c)
		}
	}
}

// started reports whether processing of l's shard has begun: its
// checkpoint is a sequence number or SHARD_END.
func started(l Lease) bool {
	return l.Checkpoint != "" && !checkpoint.Position(l.Checkpoint).IsStart()
}
