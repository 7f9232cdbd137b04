package kcl

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/lease"
)

// KinesisAPI is the part of the Kinesis client the worker calls: reading
// shards, and listing them for the lease layer's shard sync.
// *kinesis.Client implements it.
type KinesisAPI interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// ErrorAction is what the worker does when ProcessRecords returns an error.
type ErrorAction int

const (
	// RetryForever retries the same batch with backoff until it succeeds
	// (or the lease is lost, or the worker stops). The default.
	RetryForever ErrorAction = iota
	// RetryThenSkip retries the batch Config.ProcessRetries times, then
	// skips it: it is logged at error level (shard, sequence range, count)
	// and counted in kinesis_kcl_records_skipped_total.
	RetryThenSkip
	// StopShard stops processing the shard: it is logged at error level and
	// the worker keeps the lease without reading, so that no other worker
	// processes past the failing batch, until the worker shuts down and
	// releases it.
	StopShard
)

func (a ErrorAction) String() string {
	switch a {
	case RetryForever:
		return "RetryForever"
	case RetryThenSkip:
		return "RetryThenSkip"
	case StopShard:
		return "StopShard"
	}
	return fmt.Sprintf("ErrorAction(%d)", int(a))
}

// Config configures a Worker. The zero value of every field but Stream, App
// and one of Processor / NewProcessor is a usable default.
type Config struct {
	// Stream is the stream's name or ARN. Required.
	Stream string
	// App names the consumer application; several workers with the same App
	// share the stream's shards. Required.
	App string
	// LeaseTable is the DynamoDB lease table. Default App. It is created
	// (on-demand capacity) when missing.
	LeaseTable string
	// WorkerID identifies this worker in the lease table. Default
	// hostname, process ID and a random suffix, unique per Worker.
	WorkerID string

	// Processor receives the records of every shard the worker holds; it
	// must be safe for concurrent use (calls for one shard are sequential).
	// Exactly one of Processor and NewProcessor is required.
	Processor RecordProcessor
	// NewProcessor makes one processor per shard, called when the worker
	// starts processing a shard.
	NewProcessor func(shardID string) RecordProcessor

	// InitialPosition is where reading starts in a shard that has no
	// checkpoint and no leased ancestor: checkpoint.Latest, TrimHorizon or
	// AtTimestamp. Default Latest. Descendants of
	// leased shards always start at TRIM_HORIZON.
	InitialPosition checkpoint.Position
	// InitialTimestamp is the time for InitialPosition AtTimestamp
	// (required then, unused otherwise).
	InitialTimestamp time.Time

	// OnProcessError is what happens when ProcessRecords (or Initialize,
	// or ShardEnded) returns an error. Default RetryForever.
	OnProcessError ErrorAction
	// ProcessRetries is how many times RetryThenSkip retries a batch before
	// skipping it. Default 3.
	ProcessRetries int
	// ProcessBackoffBase is the first wait before retrying a failed
	// processor call; it doubles on each failure, with jitter. Default 100ms.
	ProcessBackoffBase time.Duration
	// ProcessBackoffMax caps the wait between processor retries. Default 10s.
	ProcessBackoffMax time.Duration

	// ParentPollInterval is how often a shard whose parents are not done,
	// and are not processed in this process, checks the lease table for
	// them. Parents processed by this worker notify it at once. Default 2s.
	ParentPollInterval time.Duration

	// ShardSyncInterval is how often the lease table is brought in line
	// with the stream's shards (leases created for new shards, finished
	// ones deleted). Child leases of a shard this worker ends are created
	// at once regardless. Default 60s.
	ShardSyncInterval time.Duration

	// AbortOnCancel makes Run return as soon as its context is cancelled,
	// without ShutdownRequested and without releasing leases, as a crash
	// would; other workers take the leases after Lease.FailoverTime.
	// Default false: cancelling Run's context is a graceful shutdown.
	AbortOnCancel bool
	// ShutdownTimeout bounds the graceful shutdown that follows the
	// cancellation of Run's context (Shutdown is bounded by its own
	// context). Default 20s.
	ShutdownTimeout time.Duration

	// Kinesis is the Kinesis client. Default: built from the standard AWS
	// config chain.
	Kinesis KinesisAPI
	// DynamoDB is the DynamoDB client for the lease table. Default: built
	// from the standard AWS config chain. Unused when LeaseStore is set.
	DynamoDB DynamoDBAPI
	// LeaseStore replaces the DynamoDB lease table (for tests, with
	// lease.NewMemoryStore). Default: a DynamoDB store on LeaseTable.
	LeaseStore lease.Store

	// Lease configures lease coordination (FailoverTime and the passes).
	// Its defaults are the lease package's (FailoverTime 10s). Its Store,
	// WorkerID, callbacks, Logger and Metrics are set by the worker.
	Lease lease.Config
	// Retrieval configures GetRecords polling.
	Retrieval RetrievalConfig

	// Logger receives the worker's logs. Default none.
	Logger *zap.Logger
	// Metrics registers the worker's metrics (kinesis_kcl_*) and the lease
	// layer's (kinesis_lease_*). Default none.
	Metrics prometheus.Registerer
}

// RetrievalConfig configures how shards are read.
type RetrievalConfig struct {
	// MaxRecords is GetRecords' Limit: records per call, 1 to 10,000.
	// Default 10,000.
	MaxRecords int
	// IdleWait is the wait after a GetRecords that returned no records.
	// Default 1s.
	IdleWait time.Duration
	// CallInterval is the least time between two GetRecords calls on one
	// shard. Default 200ms: Kinesis allows 5 calls per second per shard,
	// shared by every consumer of the stream. Values below 200ms are
	// rejected.
	CallInterval time.Duration
	// PrefetchBytes bounds the memory held per shard: the next batch is
	// fetched while the current one is processed only when the current one
	// holds fewer bytes of record data than this. Default 8 MiB.
	PrefetchBytes int
	// BackoffBase is the first wait after a failed Kinesis call
	// (throttling, service or network errors); it doubles on each
	// consecutive failure, with jitter. Default 200ms.
	BackoffBase time.Duration
	// BackoffMax caps the wait between retries of a failing Kinesis call.
	// Default 5s.
	BackoffMax time.Duration
}

// Defaults.
const (
	DefaultMaxRecords         = 10000
	DefaultIdleWait           = time.Second
	DefaultCallInterval       = 200 * time.Millisecond
	DefaultPrefetchBytes      = 8 << 20
	DefaultBackoffBase        = 200 * time.Millisecond
	DefaultBackoffMax         = 5 * time.Second
	DefaultProcessRetries     = 3
	DefaultProcessBackoffBase = 100 * time.Millisecond
	DefaultProcessBackoffMax  = 10 * time.Second
	DefaultParentPollInterval = 2 * time.Second
	DefaultShutdownTimeout    = 20 * time.Second
)

// ErrInvalidConfig is wrapped by every error Validate returns.
var ErrInvalidConfig = errors.New("kcl: invalid config")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// Validate reports the first field of c that is wrong, in an error that
// names it and wraps ErrInvalidConfig. Zero values are valid (defaults).
func (c *Config) Validate() error {
	switch {
	case c.Stream == "":
		return invalid("Stream is required")
	case c.App == "":
		return invalid("App is required")
	case c.Processor == nil && c.NewProcessor == nil:
		return invalid("one of Processor and NewProcessor is required")
	case c.Processor != nil && c.NewProcessor != nil:
		return invalid("set only one of Processor and NewProcessor")
	}
	switch c.InitialPosition {
	case "", checkpoint.Latest, checkpoint.TrimHorizon:
	case checkpoint.AtTimestamp:
		if c.InitialTimestamp.IsZero() {
			return invalid("InitialPosition AT_TIMESTAMP needs InitialTimestamp")
		}
	default:
		return invalid("InitialPosition %q is not LATEST, TRIM_HORIZON or AT_TIMESTAMP", c.InitialPosition)
	}
	switch c.OnProcessError {
	case RetryForever, RetryThenSkip, StopShard:
	default:
		return invalid("OnProcessError %v is unknown", c.OnProcessError)
	}
	if c.ProcessRetries < 0 {
		return invalid("ProcessRetries %d is negative", c.ProcessRetries)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProcessBackoffBase", c.ProcessBackoffBase}, {"ProcessBackoffMax", c.ProcessBackoffMax},
		{"ParentPollInterval", c.ParentPollInterval}, {"ShardSyncInterval", c.ShardSyncInterval}, {"ShutdownTimeout", c.ShutdownTimeout},
		{"Retrieval.IdleWait", c.Retrieval.IdleWait}, {"Retrieval.CallInterval", c.Retrieval.CallInterval},
		{"Retrieval.BackoffBase", c.Retrieval.BackoffBase}, {"Retrieval.BackoffMax", c.Retrieval.BackoffMax},
	} {
		if d.v < 0 {
			return invalid("%s %v is negative", d.name, d.v)
		}
	}
	r := c.Retrieval
	if r.MaxRecords < 0 || r.MaxRecords > 10000 {
		return invalid("Retrieval.MaxRecords %d is not within 1..10000", r.MaxRecords)
	}
	if r.CallInterval != 0 && r.CallInterval < DefaultCallInterval {
		return invalid("Retrieval.CallInterval %v is below 200ms (Kinesis allows 5 GetRecords calls/s per shard)", r.CallInterval)
	}
	if r.PrefetchBytes < 0 {
		return invalid("Retrieval.PrefetchBytes %d is negative", r.PrefetchBytes)
	}
	if r.BackoffMax != 0 && r.BackoffBase > r.BackoffMax {
		return invalid("Retrieval.BackoffBase %v exceeds Retrieval.BackoffMax %v", r.BackoffBase, r.BackoffMax)
	}
	if c.ProcessBackoffMax != 0 && c.ProcessBackoffBase > c.ProcessBackoffMax {
		return invalid("ProcessBackoffBase %v exceeds ProcessBackoffMax %v", c.ProcessBackoffBase, c.ProcessBackoffMax)
	}
	// The lease settings, with the fields the worker sets itself filled in.
	lc := c.Lease
	lc.Store, lc.WorkerID = lease.NewMemoryStore(), "validate"
	if err := lc.Validate(); err != nil {
		return invalid("Lease: %v", err)
	}
	return nil
}

// withDefaults returns c with every zero field set to its default (clients
// excepted).
func (c Config) withDefaults() Config {
	if c.LeaseTable == "" {
		c.LeaseTable = c.App
	}
	if c.WorkerID == "" {
		c.WorkerID = defaultWorkerID()
	}
	if c.InitialPosition == "" {
		c.InitialPosition = checkpoint.Latest
	}
	if c.ProcessRetries == 0 {
		c.ProcessRetries = DefaultProcessRetries
	}
	setDur(&c.ProcessBackoffBase, DefaultProcessBackoffBase)
	setDur(&c.ProcessBackoffMax, DefaultProcessBackoffMax)
	setDur(&c.ParentPollInterval, DefaultParentPollInterval)
	setDur(&c.ShutdownTimeout, DefaultShutdownTimeout)
	c.Retrieval = c.Retrieval.withDefaults()
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (r RetrievalConfig) withDefaults() RetrievalConfig {
	if r.MaxRecords == 0 {
		r.MaxRecords = DefaultMaxRecords
	}
	if r.PrefetchBytes == 0 {
		r.PrefetchBytes = DefaultPrefetchBytes
	}
	setDur(&r.IdleWait, DefaultIdleWait)
	setDur(&r.CallInterval, DefaultCallInterval)
	setDur(&r.BackoffBase, DefaultBackoffBase)
	setDur(&r.BackoffMax, DefaultBackoffMax)
	return r
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}
