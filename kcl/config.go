package kcl

import (
	"cmp"
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
	"github.com/kinesisgo/kinesis/internal/streamref"
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
// and one of Processor / NewProcessor is a usable default. Every setting is
// either used or rejected by Validate: a setting that would have no effect
// with the others (ProcessRetries without RetryThenSkip, say) is an error.
type Config struct {
	// Stream is the stream's name or ARN
	// (arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME). Required.
	Stream string
	// App names the consumer application; several workers with the same App
	// share the stream's shards. Required.
	App string
	// LeaseTable is the DynamoDB lease table. Default App. It is created
	// (on-demand capacity) when missing. Rejected with LeaseStore, which
	// replaces the table.
	LeaseTable string
	// WorkerID identifies this worker in the lease table (the leases'
	// owner). Default hostname, process ID and a random suffix, unique per
	// Worker.
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
	// AtTimestamp. Default Latest. Descendants of leased shards always start
	// at TrimHorizon.
	InitialPosition checkpoint.Position
	// InitialTimestamp is the time for InitialPosition AtTimestamp:
	// required then, rejected otherwise.
	InitialTimestamp time.Time
	// ClockSkewMargin covers the difference between the clocks of the
	// workers and of Kinesis where a LATEST start is pinned to a time. A
	// LATEST lease keeps the time it was created (lease.Lease.
	// LatestTimestamp), and until its first checkpoint it is read from that
	// time less ClockSkewMargin (AT_TIMESTAMP, against the arrival times
	// Kinesis gives records), so that a lease moved or taken over before
	// its first record skips nothing written since the application first
	// saw the shard. Default 5s.
	ClockSkewMargin time.Duration

	// OnProcessError is what happens when ProcessRecords (or Initialize,
	// or ShardEnded) returns an error. Default RetryForever.
	OnProcessError ErrorAction
	// ProcessRetries is how many times RetryThenSkip retries a failing
	// batch before skipping it: 1 + ProcessRetries attempts in all. Default
	// 3 (0 means the default); NoRetries (-1) skips a batch after its first
	// failure. Rejected with another OnProcessError.
	ProcessRetries int
	// ProcessBackoffBase is the longest wait before the first retry of a
	// failed processor call: each wait is random between zero and a ceiling
	// (full jitter) that starts at ProcessBackoffBase and doubles with each
	// consecutive failure up to ProcessBackoffMax. Default 100ms; at most
	// ProcessBackoffMax. Rejected with OnProcessError StopShard, which does
	// not retry.
	ProcessBackoffBase time.Duration
	// ProcessBackoffMax caps the wait between processor retries. Default
	// 10s; at least ProcessBackoffBase. Rejected with OnProcessError
	// StopShard.
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
	// context), and the LeaseLost call of a shard whose lease was lost.
	// Default 20s.
	ShutdownTimeout time.Duration

	// Kinesis is the Kinesis client. Default: built from the standard AWS
	// config chain, with the SDK's retries off (the worker retries with
	// backoff itself).
	Kinesis KinesisAPI
	// DynamoDB is the DynamoDB client for the lease table. Default: built
	// from the standard AWS config chain, with the SDK's retries off (the
	// worker and the lease layer retry themselves). Rejected with
	// LeaseStore.
	DynamoDB DynamoDBAPI
	// LeaseStore replaces the DynamoDB lease table (for tests, with
	// lease.NewMemoryStore). Default: a DynamoDB store on LeaseTable.
	LeaseStore lease.Store

	// Lease configures lease coordination: how leases expire, are renewed
	// and taken.
	Lease LeaseConfig
	// Retrieval configures how shards are read: GetRecords polling (the
	// default) or enhanced fan-out.
	Retrieval RetrievalConfig

	// Logger receives the worker's logs and the lease layer's. Default
	// none.
	Logger *zap.Logger
	// Metrics registers the worker's metrics (kinesis_kcl_*) and the lease
	// layer's (kinesis_lease_*). Default none.
	Metrics prometheus.Registerer
}

// NoRetries is the Config.ProcessRetries that skips a failing batch after
// its first attempt (with OnProcessError RetryThenSkip).
const NoRetries = -1

// LeaseConfig configures the worker's side of lease coordination (package
// lease; see the "Lease table" section of docs/design.md). The worker
// supplies the rest of a lease.Config itself: the store, its WorkerID, its
// Logger and Metrics, and the callbacks that start and stop shards.
type LeaseConfig struct {
	// FailoverTime is how long a lease may go without its counter changing
	// before other workers consider it expired and take it; it is also the
	// longest this worker keeps a lease it failed to renew. Default 10s.
	FailoverTime time.Duration
	// RenewInterval is how often held leases are renewed. Must be below
	// FailoverTime. Default FailoverTime/3.
	RenewInterval time.Duration
	// TakeInterval is how often the worker reads the leader item of the
	// coordinator state table (one item), to learn of leases assigned to
	// it and whether the leader lives; the leader renews the item as often.
	// A lease assigned to this worker is taken up within TakeInterval.
	// Default FailoverTime/5.
	TakeInterval time.Duration
	// WorkerCheckInterval is how often the leader reads the worker
	// metrics table (the heartbeats): a dead worker's leases are assigned
	// to others within FailoverTime + WorkerCheckInterval of its last
	// heartbeat. Default FailoverTime/3.
	WorkerCheckInterval time.Duration
	// ScanInterval is how often the leader scans the lease table when
	// nothing asks for it sooner (to balance by the measured throughput).
	// Default 3 × FailoverTime.
	ScanInterval time.Duration
	// MaxLeasesForWorker caps the leases this worker holds. Default 0: no
	// cap.
	MaxLeasesForWorker int
	// MaxConcurrentWrites bounds the lease table writes in flight at once
	// for each kind of pass: the renewals of one renewal pass, the takes of
	// one taker pass, the releases of a shutdown. Default 16.
	MaxConcurrentWrites int
	// BalanceByCount spreads leases over the workers by count only. By
	// default (false) the worker writes each shard's measured read rate to
	// its lease at every renewal (throughputKBps), and once every lease
	// has one the workers spread the throughput instead, so that hot
	// shards end on different workers.
	BalanceByCount bool
}

// leaseConfig is the lease.Config the worker's coordinator runs with.
func (c Config) leaseConfig(store lease.Store) lease.Config {
	return lease.Config{
		Store: store, WorkerID: c.WorkerID,
		FailoverTime: c.Lease.FailoverTime, RenewInterval: c.Lease.RenewInterval, TakeInterval: c.Lease.TakeInterval,
		WorkerCheckInterval: c.Lease.WorkerCheckInterval, ScanInterval: c.Lease.ScanInterval,
		MaxLeasesForWorker: c.Lease.MaxLeasesForWorker, MaxConcurrentWrites: c.Lease.MaxConcurrentWrites,
		BalanceByCount: c.Lease.BalanceByCount,
		Logger:         c.Logger, Metrics: c.Metrics,
	}
}

// RetrievalConfig configures how shards are read.
type RetrievalConfig struct {
	// Mode is how shards are read: RetrievalPolling (GetRecords) or
	// RetrievalFanOut (enhanced fan-out, SubscribeToShard). Default
	// RetrievalPolling. RetrievalFanOut needs a Kinesis client that also
	// has the calls of FanOutAPI and ConsumerAPI (*kinesis.Client has
	// them), over HTTP/2.
	Mode RetrievalMode
	// ConsumerName names the stream consumer RetrievalFanOut reads
	// through; the worker registers it when it does not exist and waits
	// until it is ACTIVE. 1 to 128 characters of a-z, A-Z, 0-9, _ . and
	// - (AWS's pattern). Default App, when App fits that pattern.
	// Rejected with RetrievalPolling.
	ConsumerName string
	// MaxRecords is GetRecords' Limit: records per call, 1 to 10,000.
	// Default 10,000. Rejected with RetrievalFanOut: a fan-out event holds
	// what the service sends.
	MaxRecords int
	// IdleWait is the wait after a GetRecords that returned no records.
	// Default 1s. Rejected with RetrievalFanOut.
	IdleWait time.Duration
	// CallInterval is the least time between two GetRecords calls on one
	// shard. Default 200ms: Kinesis allows 5 calls per second per shard,
	// shared by every consumer of the stream. Values below 200ms are
	// rejected. Under RetrievalFanOut it is the least wait before a
	// subscription that failed is opened again (SubscribeToShard itself
	// is called at most once per second per shard, AWS's limit).
	CallInterval time.Duration
	// PrefetchBytes bounds the memory held per shard: the next batch is
	// fetched while the current one is processed only when the current one
	// holds fewer bytes of record data than this. Default 8 MiB. Under
	// RetrievalFanOut, events not yet read wait in the HTTP/2 stream's
	// receive window on top of this (the Go HTTP/2 client's default is
	// 4 MiB per stream; http.Transport's HTTP2.MaxReceiveBufferPerStream
	// lowers it), and the service holds back the rest.
	PrefetchBytes int
	// BackoffBase is the longest wait after the first failure of a call the
	// worker retries itself (GetRecords and GetShardIterator after
	// throttling, service or network errors; the child leases and the
	// SHARD_END checkpoint of a shard it ended): each wait is random
	// between zero and a ceiling (full jitter) that starts at BackoffBase
	// and doubles with each consecutive failure up to BackoffMax. A
	// Kinesis read never retries sooner than CallInterval. Default 200ms;
	// at most BackoffMax.
	BackoffBase time.Duration
	// BackoffMax caps the wait between retries of a failing call. Default
	// 5s; at least BackoffBase.
	BackoffMax time.Duration
}

// RetrievalMode is how a worker reads its shards.
type RetrievalMode int

const (
	// RetrievalPolling reads shards with GetShardIterator and GetRecords,
	// sharing each shard's 5 reads per second and 2 MiB/s with every other
	// polling application of the stream. The default.
	RetrievalPolling RetrievalMode = iota
	// RetrievalFanOut reads shards with enhanced fan-out: a registered
	// stream consumer (Retrieval.ConsumerName) subscribes to each held
	// shard with SubscribeToShard and gets 2 MiB/s per shard of its own,
	// pushed over HTTP/2.
	RetrievalFanOut
)

func (m RetrievalMode) String() string {
	switch m {
	case RetrievalPolling:
		return "RetrievalPolling"
	case RetrievalFanOut:
		return "RetrievalFanOut"
	}
	return fmt.Sprintf("RetrievalMode(%d)", int(m))
}

// validConsumerName reports whether name fits AWS's pattern for stream
// consumer names, [a-zA-Z0-9_.-]+, 1 to 128 characters
// (RegisterStreamConsumer).
func validConsumerName(name string) bool {
	if len(name) < 1 || len(name) > 128 {
		return false
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// Defaults.
const (
	DefaultMaxRecords          = 10000
	DefaultIdleWait            = time.Second
	DefaultCallInterval        = 200 * time.Millisecond
	DefaultPrefetchBytes       = 8 << 20
	DefaultBackoffBase         = 200 * time.Millisecond
	DefaultBackoffMax          = 5 * time.Second
	DefaultProcessRetries      = 3
	DefaultProcessBackoffBase  = 100 * time.Millisecond
	DefaultProcessBackoffMax   = 10 * time.Second
	DefaultParentPollInterval  = 2 * time.Second
	DefaultClockSkewMargin     = 5 * time.Second
	DefaultShardSyncInterval   = 60 * time.Second
	DefaultShutdownTimeout     = 20 * time.Second
	DefaultFailoverTime        = 10 * time.Second
	DefaultMaxConcurrentWrites = 16
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
	case c.LeaseStore != nil && c.LeaseTable != "":
		return invalid("LeaseTable %q is unused with LeaseStore, which replaces the lease table", c.LeaseTable)
	case c.LeaseStore != nil && c.DynamoDB != nil:
		return invalid("DynamoDB is unused with LeaseStore, which replaces the lease table")
	}
	if _, err := streamref.Parse(c.Stream); err != nil {
		return invalid("Stream: %v", err)
	}
	switch c.InitialPosition {
	case "", checkpoint.Latest, checkpoint.TrimHorizon:
		if !c.InitialTimestamp.IsZero() {
			return invalid("InitialTimestamp is only used with InitialPosition AT_TIMESTAMP")
		}
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
	switch {
	case c.ProcessRetries < NoRetries:
		return invalid("ProcessRetries %d is negative (NoRetries, -1, skips without retrying)", c.ProcessRetries)
	case c.ProcessRetries != 0 && c.OnProcessError != RetryThenSkip:
		return invalid("ProcessRetries %d is only used with OnProcessError RetryThenSkip, not %v", c.ProcessRetries, c.OnProcessError)
	case c.OnProcessError == StopShard && (c.ProcessBackoffBase != 0 || c.ProcessBackoffMax != 0):
		return invalid("ProcessBackoffBase and ProcessBackoffMax are unused with OnProcessError StopShard, which does not retry")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ProcessBackoffBase", c.ProcessBackoffBase}, {"ProcessBackoffMax", c.ProcessBackoffMax},
		{"ClockSkewMargin", c.ClockSkewMargin}, {"ParentPollInterval", c.ParentPollInterval}, {"ShardSyncInterval", c.ShardSyncInterval}, {"ShutdownTimeout", c.ShutdownTimeout},
		{"Lease.FailoverTime", c.Lease.FailoverTime}, {"Lease.RenewInterval", c.Lease.RenewInterval}, {"Lease.TakeInterval", c.Lease.TakeInterval},
		{"Lease.WorkerCheckInterval", c.Lease.WorkerCheckInterval}, {"Lease.ScanInterval", c.Lease.ScanInterval},
		{"Retrieval.IdleWait", c.Retrieval.IdleWait}, {"Retrieval.CallInterval", c.Retrieval.CallInterval},
		{"Retrieval.BackoffBase", c.Retrieval.BackoffBase}, {"Retrieval.BackoffMax", c.Retrieval.BackoffMax},
	} {
		if d.v < 0 {
			return invalid("%s %v is negative", d.name, d.v)
		}
	}
	if err := c.Lease.validate(); err != nil {
		return err
	}
	r := c.Retrieval
	switch r.Mode {
	case RetrievalPolling:
		if r.ConsumerName != "" {
			return invalid("Retrieval.ConsumerName %q is only used with Retrieval.Mode RetrievalFanOut", r.ConsumerName)
		}
	case RetrievalFanOut:
		switch {
		case r.MaxRecords != 0:
			return invalid("Retrieval.MaxRecords %d is only used with Retrieval.Mode RetrievalPolling: a fan-out event holds what the service sends", r.MaxRecords)
		case r.IdleWait != 0:
			return invalid("Retrieval.IdleWait %v is only used with Retrieval.Mode RetrievalPolling: fan-out waits for the service's events", r.IdleWait)
		}
		if r.ConsumerName != "" && !validConsumerName(r.ConsumerName) {
			return invalid("Retrieval.ConsumerName %q is not 1 to 128 characters of a-z, A-Z, 0-9, _ . -", r.ConsumerName)
		}
		if r.ConsumerName == "" && !validConsumerName(c.App) {
			return invalid("Retrieval.ConsumerName defaults to App %q, which is not a valid consumer name (1 to 128 characters of a-z, A-Z, 0-9, _ . -): set it", c.App)
		}
	default:
		return invalid("Retrieval.Mode %v is unknown", r.Mode)
	}
	if r.MaxRecords < 0 || r.MaxRecords > 10000 {
		return invalid("Retrieval.MaxRecords %d is not within 1..10000", r.MaxRecords)
	}
	if r.CallInterval != 0 && r.CallInterval < DefaultCallInterval {
		return invalid("Retrieval.CallInterval %v is below 200ms (Kinesis allows 5 GetRecords calls/s per shard)", r.CallInterval)
	}
	if r.PrefetchBytes < 0 {
		return invalid("Retrieval.PrefetchBytes %d is negative", r.PrefetchBytes)
	}
	if err := backoffOrder("Retrieval.BackoffBase", r.BackoffBase, DefaultBackoffBase, "Retrieval.BackoffMax", r.BackoffMax, DefaultBackoffMax); err != nil {
		return err
	}
	return backoffOrder("ProcessBackoffBase", c.ProcessBackoffBase, DefaultProcessBackoffBase, "ProcessBackoffMax", c.ProcessBackoffMax, DefaultProcessBackoffMax)
}

// backoffOrder rejects a backoff base above its max, either of them given
// or its default.
func backoffOrder(baseName string, base, defBase time.Duration, maxName string, max, defMax time.Duration) error {
	show := func(d, def time.Duration) string {
		if d == 0 {
			return fmt.Sprintf("%v (default)", def)
		}
		return d.String()
	}
	b, m := cmp.Or(base, defBase), cmp.Or(max, defMax)
	if b > m {
		return invalid("%s %s exceeds %s %s", baseName, show(base, defBase), maxName, show(max, defMax))
	}
	return nil
}

// validate checks the lease settings, defaults applied, as the lease layer
// would, naming the fields as Config spells them.
func (l LeaseConfig) validate() error {
	d := l.withDefaults()
	switch {
	case d.RenewInterval <= 0 || d.TakeInterval <= 0:
		return invalid("Lease.FailoverTime %v is too short to derive Lease.RenewInterval and Lease.TakeInterval from", d.FailoverTime)
	case d.RenewInterval >= d.FailoverTime:
		return invalid("Lease.RenewInterval %v must be below Lease.FailoverTime %v", d.RenewInterval, d.FailoverTime)
	case d.WorkerCheckInterval <= 0 || d.WorkerCheckInterval >= d.FailoverTime:
		return invalid("Lease.WorkerCheckInterval %v must be positive and below Lease.FailoverTime %v", d.WorkerCheckInterval, d.FailoverTime)
	case l.MaxLeasesForWorker < 0:
		return invalid("Lease.MaxLeasesForWorker %d is negative", l.MaxLeasesForWorker)
	case l.MaxConcurrentWrites < 0:
		return invalid("Lease.MaxConcurrentWrites %d is negative", l.MaxConcurrentWrites)
	}
	return nil
}

// withDefaults returns l with every zero field set to its default, as the
// lease package sets them.
func (l LeaseConfig) withDefaults() LeaseConfig {
	setDur(&l.FailoverTime, DefaultFailoverTime)
	setDur(&l.RenewInterval, l.FailoverTime/3)
	setDur(&l.TakeInterval, l.FailoverTime/5)
	setDur(&l.WorkerCheckInterval, l.FailoverTime/3)
	setDur(&l.ScanInterval, 3*l.FailoverTime)
	if l.MaxConcurrentWrites == 0 {
		l.MaxConcurrentWrites = DefaultMaxConcurrentWrites
	}
	return l
}

// withDefaults returns c with every zero field set to its default (clients
// excepted). ProcessRetries stays NoRetries: see retries.
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
	setDur(&c.ClockSkewMargin, DefaultClockSkewMargin)
	setDur(&c.ShardSyncInterval, DefaultShardSyncInterval)
	setDur(&c.ShutdownTimeout, DefaultShutdownTimeout)
	c.Lease = c.Lease.withDefaults()
	c.Retrieval = c.Retrieval.withDefaults()
	if c.Retrieval.Mode == RetrievalFanOut && c.Retrieval.ConsumerName == "" {
		c.Retrieval.ConsumerName = c.App
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// retries is how many times RetryThenSkip retries a batch.
func (c *Config) retries() int {
	if c.ProcessRetries == NoRetries {
		return 0
	}
	return c.ProcessRetries
}

// withDefaults returns r with every zero field set to its default but
// ConsumerName, whose default is Config's App (see Config.withDefaults).
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
