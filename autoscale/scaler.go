package autoscale

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/streamref"
	"github.com/kinesisgo/kinesis/lease"
)

// KinesisAPI is the part of the Kinesis client the scaler calls.
// *kinesis.Client implements it.
type KinesisAPI interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
	SplitShard(ctx context.Context, in *kinesis.SplitShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SplitShardOutput, error)
	MergeShards(ctx context.Context, in *kinesis.MergeShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.MergeShardsOutput, error)
}

// CloudWatchAPI is the part of the CloudWatch client the scaler calls.
// *cloudwatch.Client implements it.
type CloudWatchAPI interface {
	GetMetricData(ctx context.Context, in *cloudwatch.GetMetricDataInput, optFns ...func(*cloudwatch.Options)) (*cloudwatch.GetMetricDataOutput, error)
}

// LeaseLister lists the leases of a kcl application consuming the stream:
// *lease.DynamoDBStore implements it.
type LeaseLister interface {
	List(ctx context.Context) ([]lease.Lease, error)
}

// Defaults of Config.
const (
	DefaultInterval      = time.Minute
	DefaultWindow        = 5 * time.Minute
	DefaultPeriod        = time.Minute
	DefaultSampleRecords = 2000
	DefaultSampleWindow  = time.Minute
	DefaultActiveTimeout = 10 * time.Minute
)

// Config configures a Scaler.
type Config struct {
	// Stream is the stream's name or ARN. Required.
	Stream string
	// Kinesis and CloudWatch are the clients. Default: built from the
	// standard AWS configuration chain.
	Kinesis    KinesisAPI
	CloudWatch CloudWatchAPI
	// Plan sets the thresholds, limits and cool-downs of decisions.
	Plan PlanConfig
	// Leases, when set, is a second source of traffic: the read rate a kcl
	// application consuming the stream measured per lease (throughputKBps,
	// written at each renewal), used for a shard whose CloudWatch metrics
	// are incomplete (metrics not enabled, or delayed) while its lease is
	// held and measured. A consumer that keeps up reads what is written;
	// the records per second and refused writes stay unknown (zero).
	// Default nil: CloudWatch only.
	Leases LeaseLister
	// Interval is the time between two evaluations of Run. Default 1
	// minute.
	Interval time.Duration
	// Window is how much recent traffic an evaluation reads, ending at the
	// last whole Period. Default 5 minutes; a multiple of Period.
	Window time.Duration
	// Period is the CloudWatch period of the metrics, whole seconds.
	// Default 1 minute, the resolution of Kinesis's shard-level metrics.
	Period time.Duration
	// SampleRecords is how many recent records of a shard above the target
	// are read for the hash key sample of a median split. Default 2,000;
	// negative: no sampling (splits at the midpoint).
	SampleRecords int
	// SampleWindow is how far back the sample starts. Default 1 minute.
	SampleWindow time.Duration
	// DryRun makes Once and Run decide and log without resharding.
	DryRun bool
	// ActiveTimeout bounds the wait for the stream to be ACTIVE again after
	// an action. Default 10 minutes.
	ActiveTimeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives every decision with its inputs. Default: none.
	Logger *zap.Logger
	// Metrics registers the scaler's metrics (see the package
	// documentation). Default: none.
	Metrics prometheus.Registerer
}

// Validate reports the first invalid field of c.
func (c Config) Validate() error {
	if _, err := streamref.Parse(c.Stream); err != nil {
		return fmt.Errorf("autoscale: Config.Stream: %w", err)
	}
	d := c.withDefaults()
	switch {
	case d.Period < time.Second || d.Period%time.Second != 0:
		return fmt.Errorf("autoscale: Period %s is not a whole number of seconds", c.Period)
	case d.Window < d.Period || d.Window%d.Period != 0:
		return fmt.Errorf("autoscale: Window %s is not a multiple of Period %s", d.Window, d.Period)
	case d.Interval < 0 || d.SampleWindow < 0 || d.ActiveTimeout < 0:
		return errors.New("autoscale: Interval, SampleWindow and ActiveTimeout must not be negative")
	}
	return c.Plan.Validate()
}

func (c Config) withDefaults() Config {
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Interval, DefaultInterval)
	def(&c.Window, DefaultWindow)
	def(&c.Period, DefaultPeriod)
	def(&c.SampleWindow, DefaultSampleWindow)
	def(&c.ActiveTimeout, DefaultActiveTimeout)
	if c.SampleRecords == 0 {
		c.SampleRecords = DefaultSampleRecords
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Scaler evaluates a stream and reshards it. Make one with New. Once and
// Run must not be called concurrently: the scaler remembers its last action
// and each shard's cold spell between evaluations.
type Scaler struct {
	cfg     Config
	stream  streamref.Ref
	planner *Planner
	log     *zap.Logger
	met     *metrics
}

// Evaluation is one evaluation of the stream: the decision, and whether it
// was carried out.
type Evaluation struct {
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
	Decision
	// Acted is set when the split or merge was started (not in a dry run).
	Acted  bool `json:"acted"`
	DryRun bool `json:"dryRun,omitempty"`
}

// New checks cfg and returns a scaler. Clients not given are built from the
// standard AWS configuration chain.
func New(cfg Config) (*Scaler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Kinesis == nil || cfg.CloudWatch == nil {
		awsCfg, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("autoscale: load AWS config: %w", err)
		}
		if cfg.Kinesis == nil {
			cfg.Kinesis = kinesis.NewFromConfig(awsCfg)
		}
		if cfg.CloudWatch == nil {
			cfg.CloudWatch = cloudwatch.NewFromConfig(awsCfg)
		}
	}
	ref, _ := streamref.Parse(cfg.Stream) // checked by Validate
	p, _ := NewPlanner(cfg.Plan)          // checked by Validate
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Scaler{cfg: cfg, stream: ref, planner: p, log: log.With(zap.String("stream", ref.ShortName())), met: newMetrics(cfg.Metrics)}, nil
}

// Run evaluates the stream every Interval until ctx ends, and returns
// ctx's error then. A failed evaluation is logged and counted, and the
// next one is made at the next interval.
func (s *Scaler) Run(ctx context.Context) error {
	for {
		if _, err := s.Once(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("autoscale: evaluation failed", zap.Error(err))
		}
		if err := backoff.Sleep(ctx, s.cfg.Interval); err != nil {
			return err
		}
	}
}

// Once evaluates the stream once: it reads the shards and their metrics,
// decides, and unless DryRun starts the split or merge and waits until the
// stream is ACTIVE again.
func (s *Scaler) Once(ctx context.Context) (Evaluation, error) {
	ev, err := s.once(ctx)
	if err != nil {
		s.met.errors.Inc()
	}
	return ev, err
}

func (s *Scaler) once(ctx context.Context) (Evaluation, error) {
	now := s.cfg.Now()
	ev := Evaluation{Stream: s.stream.String(), Time: now, DryRun: s.cfg.DryRun}
	sum, err := s.cfg.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: s.stream.Name(), StreamARN: s.stream.ARN()})
	if err != nil {
		return ev, fmt.Errorf("autoscale: describe stream %s: %w", s.stream, err)
	}
	shards, err := s.openShards(ctx)
	if err != nil {
		return ev, err
	}
	loads, err := s.shardLoads(ctx, shards, now)
	if err != nil {
		return ev, err
	}
	if s.cfg.Leases != nil {
		if err := s.leaseLoads(ctx, loads); err != nil {
			s.log.Warn("autoscale: reading the lease table's throughput failed", zap.Error(err))
		}
	}
	lim := s.planner.cfg
	for i := range loads {
		if loads[i].Complete && loads[i].utilization(lim) > lim.TargetUtilization && s.cfg.SampleRecords > 0 {
			sample, err := s.sample(ctx, loads[i], now)
			if err != nil {
				s.log.Warn("autoscale: sampling hash keys failed; a split would be at the midpoint", zap.String("shard", loads[i].ShardID), zap.Error(err))
			}
			loads[i].Sample = sample
		}
	}
	ev.Decision = s.planner.Decide(Snapshot{Time: now, Status: string(sum.StreamDescriptionSummary.StreamStatus), Shards: loads})
	s.logDecision(ev.Decision)
	s.met.observe(ev.Decision)
	if ev.Action == None || s.cfg.DryRun {
		return ev, nil
	}
	if err := s.act(ctx, ev.Decision); err != nil {
		return ev, err
	}
	ev.Acted = true
	s.planner.Acted(now)
	s.met.actions.WithLabelValues(string(ev.Action)).Inc()
	return ev, s.waitActive(ctx)
}

// leaseLoads fills in, from the leases' measured read rates, the shards
// whose CloudWatch metrics are incomplete.
func (s *Scaler) leaseLoads(ctx context.Context, loads []ShardLoad) error {
	leases, err := s.cfg.Leases.List(ctx)
	if err != nil {
		return err
	}
	byKey := make(map[string]lease.Lease, len(leases))
	for _, l := range leases {
		byKey[l.Key] = l
	}
	for i := range loads {
		l, ok := byKey[loads[i].ShardID]
		if loads[i].Complete || !ok || !l.ThroughputKnown || l.Owner == "" || l.Finished() {
			continue
		}
		loads[i].BytesPerSecond, loads[i].RecordsPerSecond, loads[i].ThrottledPerSecond = l.ThroughputKBps*1024, 0, 0
		loads[i].Complete, loads[i].Source = true, SourceLeases
	}
	return nil
}

func (s *Scaler) act(ctx context.Context, d Decision) error {
	var err error
	switch d.Action {
	case Split:
		_, err = s.cfg.Kinesis.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: s.stream.Name(), StreamARN: s.stream.ARN(),
			ShardToSplit: aws.String(d.Shard), NewStartingHashKey: aws.String(d.SplitAt)})
	case Merge:
		_, err = s.cfg.Kinesis.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: s.stream.Name(), StreamARN: s.stream.ARN(),
			ShardToMerge: aws.String(d.Shard), AdjacentShardToMerge: aws.String(d.Adjacent)})
	}
	if err != nil {
		return fmt.Errorf("autoscale: %s %s: %w", d.Action, d.Shard, err)
	}
	s.log.Info("autoscale: resharding started", zap.String("action", string(d.Action)), zap.String("shard", d.Shard),
		zap.String("adjacent", d.Adjacent), zap.String("splitAt", d.SplitAt))
	return nil
}

// waitActive polls the stream's status until it is ACTIVE: Kinesis allows
// one resharding operation at a time.
func (s *Scaler) waitActive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ActiveTimeout)
	defer cancel()
	for {
		out, err := s.cfg.Kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: s.stream.Name(), StreamARN: s.stream.ARN()})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == "ACTIVE" {
			return nil
		}
		if err := backoff.Sleep(ctx, 500*time.Millisecond); err != nil {
			return fmt.Errorf("autoscale: waiting for stream %s to be ACTIVE: %w", s.stream, err)
		}
	}
}

func (s *Scaler) logDecision(d Decision) {
	fields := []zap.Field{zap.String("action", string(d.Action)), zap.String("reason", d.Reason)}
	if d.Shard != "" {
		fields = append(fields, zap.String("shard", d.Shard))
	}
	if d.Action == Split {
		fields = append(fields, zap.String("splitAt", d.SplitAt), zap.String("splitBy", d.SplitBy), zap.Float64("sampleBelow", d.SampleBelow))
	}
	if d.Action == Merge {
		fields = append(fields, zap.String("adjacent", d.Adjacent))
	}
	for _, u := range d.Shards {
		fields = append(fields, zap.Dict(u.ShardID, zap.Float64("utilization", u.Utilization), zap.Float64("bytesPerSecond", u.BytesPerSecond),
			zap.Float64("recordsPerSecond", u.RecordsPerSecond), zap.Float64("throttledPerSecond", u.ThrottledPerSecond),
			zap.Bool("complete", u.Complete), zap.Int("sample", u.SampleSize)))
	}
	s.log.Info("autoscale: decision", fields...)
}
