package kcl

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kinesistest"
	"github.com/kinesisgo/kinesis/lease"
)

func TestConfigValidate(t *testing.T) {
	proc := ProcessorFunc(func(context.Context, *Batch) error { return nil })
	valid := func() Config { return Config{Stream: "s", App: "a", Processor: proc} }
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string // substring of the error; "" for valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"no stream", func(c *Config) { c.Stream = "" }, "Stream is required"},
		{"stream ARN", func(c *Config) { c.Stream = "arn:aws:kinesis:us-east-1:123456789012:stream/events" }, ""},
		{"malformed stream ARN", func(c *Config) { c.Stream = "arn:aws:kinesis:us-east-1:123456789012:events" }, "Stream: "},
		{"no app", func(c *Config) { c.App = "" }, "App is required"},
		{"no processor", func(c *Config) { c.Processor = nil }, "one of Processor and NewProcessor"},
		{"both processors", func(c *Config) { c.NewProcessor = func(string) RecordProcessor { return proc } }, "only one of Processor"},
		{"factory only", func(c *Config) { c.Processor, c.NewProcessor = nil, func(string) RecordProcessor { return proc } }, ""},
		{"lease table with a store", func(c *Config) { c.LeaseStore, c.LeaseTable = lease.NewMemoryStore(), "t" }, `LeaseTable "t" is unused with LeaseStore`},
		{"DynamoDB with a store", func(c *Config) { c.LeaseStore, c.DynamoDB = lease.NewMemoryStore(), &denyingDynamoDB{} }, "DynamoDB is unused with LeaseStore"},
		{"bad position", func(c *Config) { c.InitialPosition = "OLDEST" }, `InitialPosition "OLDEST"`},
		{"timestamp without time", func(c *Config) { c.InitialPosition = checkpoint.AtTimestamp }, "needs InitialTimestamp"},
		{"timestamp", func(c *Config) { c.InitialPosition, c.InitialTimestamp = checkpoint.AtTimestamp, time.Now() }, ""},
		{"time without timestamp", func(c *Config) { c.InitialTimestamp = time.Now() }, "InitialTimestamp is only used with InitialPosition AT_TIMESTAMP"},
		{"bad action", func(c *Config) { c.OnProcessError = 7 }, "OnProcessError ErrorAction(7)"},
		{"retries", func(c *Config) { c.OnProcessError, c.ProcessRetries = RetryThenSkip, 5 }, ""},
		{"no retries", func(c *Config) { c.OnProcessError, c.ProcessRetries = RetryThenSkip, NoRetries }, ""},
		{"negative retries", func(c *Config) { c.OnProcessError, c.ProcessRetries = RetryThenSkip, -2 }, "ProcessRetries -2 is negative"},
		{"retries without skipping", func(c *Config) { c.ProcessRetries = 2 }, "ProcessRetries 2 is only used with OnProcessError RetryThenSkip, not RetryForever"},
		{"process backoff with StopShard", func(c *Config) { c.OnProcessError, c.ProcessBackoffMax = StopShard, time.Second }, "unused with OnProcessError StopShard"},
		{"negative duration", func(c *Config) { c.Retrieval.IdleWait = -time.Second }, "Retrieval.IdleWait -1s is negative"},
		{"max records", func(c *Config) { c.Retrieval.MaxRecords = 10001 }, "Retrieval.MaxRecords 10001"},
		{"fan-out", func(c *Config) { c.Retrieval.Mode = RetrievalFanOut }, ""},
		{"fan-out consumer", func(c *Config) { c.Retrieval.Mode, c.Retrieval.ConsumerName = RetrievalFanOut, "a_b.c-1" }, ""},
		{"bad consumer name", func(c *Config) { c.Retrieval.Mode, c.Retrieval.ConsumerName = RetrievalFanOut, "a b" }, `Retrieval.ConsumerName "a b" is not`},
		{"long consumer name", func(c *Config) {
			c.Retrieval.Mode, c.Retrieval.ConsumerName = RetrievalFanOut, strings.Repeat("a", 129)
		}, "Retrieval.ConsumerName"},
		{"app not a consumer name", func(c *Config) { c.App, c.Retrieval.Mode = "my app", RetrievalFanOut }, `defaults to App "my app"`},
		{"app not a consumer name under polling", func(c *Config) { c.App = "my app" }, ""},
		{"consumer name with polling", func(c *Config) { c.Retrieval.ConsumerName = "x" }, "only used with Retrieval.Mode RetrievalFanOut"},
		{"max records with fan-out", func(c *Config) { c.Retrieval.Mode, c.Retrieval.MaxRecords = RetrievalFanOut, 10 }, "Retrieval.MaxRecords 10 is only used with Retrieval.Mode RetrievalPolling"},
		{"idle wait with fan-out", func(c *Config) { c.Retrieval.Mode, c.Retrieval.IdleWait = RetrievalFanOut, time.Second }, "Retrieval.IdleWait 1s is only used with Retrieval.Mode RetrievalPolling"},
		{"bad mode", func(c *Config) { c.Retrieval.Mode = 5 }, "Retrieval.Mode RetrievalMode(5) is unknown"},
		{"call interval", func(c *Config) { c.Retrieval.CallInterval = 100 * time.Millisecond }, "below 200ms"},
		{"prefetch", func(c *Config) { c.Retrieval.PrefetchBytes = -1 }, "PrefetchBytes -1"},
		{"backoff order", func(c *Config) { c.Retrieval.BackoffBase, c.Retrieval.BackoffMax = time.Second, time.Millisecond }, "Retrieval.BackoffBase 1s exceeds Retrieval.BackoffMax 1ms"},
		{"backoff base above the default max", func(c *Config) { c.Retrieval.BackoffBase = time.Minute }, "Retrieval.BackoffBase 1m0s exceeds Retrieval.BackoffMax 5s (default)"},
		{"backoff max below the default base", func(c *Config) { c.Retrieval.BackoffMax = 100 * time.Millisecond }, "Retrieval.BackoffBase 200ms (default) exceeds Retrieval.BackoffMax 100ms"},
		{"process backoff order", func(c *Config) { c.ProcessBackoffBase, c.ProcessBackoffMax = time.Second, time.Millisecond }, "ProcessBackoffBase 1s exceeds ProcessBackoffMax 1ms"},
		{"process backoff base above the default max", func(c *Config) { c.ProcessBackoffBase = time.Minute }, "ProcessBackoffBase 1m0s exceeds ProcessBackoffMax 10s (default)"},
		{"lease renew interval", func(c *Config) { c.Lease.FailoverTime, c.Lease.RenewInterval = time.Second, 2*time.Second }, "Lease.RenewInterval 2s must be below Lease.FailoverTime 1s"},
		{"lease renew interval above the default failover time", func(c *Config) { c.Lease.RenewInterval = 15 * time.Second }, "Lease.RenewInterval 15s must be below Lease.FailoverTime 10s"},
		{"lease take interval", func(c *Config) { c.Lease.TakeInterval = -time.Second }, "Lease.TakeInterval -1s is negative"},
		{"lease failover time", func(c *Config) { c.Lease.FailoverTime = -time.Second }, "Lease.FailoverTime -1s is negative"},
		{"lease failover time too short", func(c *Config) { c.Lease.FailoverTime = 2 }, "Lease.FailoverTime 2ns is too short"},
		{"lease cap", func(c *Config) { c.Lease.MaxLeasesForWorker = -1 }, "Lease.MaxLeasesForWorker -1 is negative"},
		{"lease writes", func(c *Config) { c.Lease.MaxConcurrentWrites = -1 }, "Lease.MaxConcurrentWrites -1 is negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.change(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidConfig)):
				t.Fatalf("Validate() = %v, want an ErrInvalidConfig naming %q", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Stream: "s", App: "billing"}.withDefaults()
	if c.LeaseTable != "billing" || c.InitialPosition != checkpoint.Latest || c.ProcessRetries != 3 ||
		c.Retrieval.MaxRecords != 10000 || c.Retrieval.CallInterval != 200*time.Millisecond ||
		c.Retrieval.IdleWait != time.Second || c.Retrieval.PrefetchBytes != 8<<20 ||
		c.ShutdownTimeout != 20*time.Second || c.ParentPollInterval != 2*time.Second || c.WorkerID == "" ||
		c.Lease != (LeaseConfig{FailoverTime: 10 * time.Second, RenewInterval: 10 * time.Second / 3, TakeInterval: 10 * time.Second / 5,
			WorkerCheckInterval: 10 * time.Second / 3, ScanInterval: 30 * time.Second, MaxConcurrentWrites: 16}) {
		t.Fatalf("defaults: %+v", c)
	}
	if d := (Config{Stream: "s", App: "a"}).withDefaults(); d.WorkerID == c.WorkerID {
		t.Errorf("two workers got the same default ID %q", d.WorkerID)
	}
	if n := (Config{ProcessRetries: NoRetries}).withDefaults(); n.retries() != 0 {
		t.Errorf("NoRetries gives %d retries, want 0", n.retries())
	}
}

// The clients the worker builds itself leave retrying to the worker and
// the lease layer.
func TestBuiltClientsDoNotRetry(t *testing.T) {
	kc, dc := newClients(aws.Config{Region: "us-east-1"})
	if _, ok := kc.Options().Retryer.(aws.NopRetryer); !ok {
		t.Errorf("Kinesis client retryer = %T, want aws.NopRetryer", kc.Options().Retryer)
	}
	if _, ok := dc.Options().Retryer.(aws.NopRetryer); !ok {
		t.Errorf("DynamoDB client retryer = %T, want aws.NopRetryer", dc.Options().Retryer)
	}
}

// TestConfigEveryFieldTakesEffect sets each field of Config to a value
// other than its default and shows an effect of it: a call reaching a fake
// with the value, a timing, a log line, a metric. Fields that cannot take
// effect with the rest of the configuration are rejected by Validate,
// checked in TestConfigValidate. The worker runs in a synctest bubble (the
// fakes do no I/O), so intervals are measured exactly and long waits take
// no time. A field of Config without a row fails the test.
func TestConfigEveryFieldTakesEffect(t *testing.T) {
	rows := []struct {
		field string
		check func(t *testing.T, r *rig)
	}{
		{"Stream", func(t *testing.T, r *rig) {
			const arn = "arn:aws:kinesis:us-east-1:123456789012:stream/events"
			r.setStream(kinesistest.Config{StreamARN: arn})
			cfg := r.config()
			cfg.Stream = arn
			r.run(cfg)
			r.waitIterators(t, 1)
			r.kin.mu.Lock()
			defer r.kin.mu.Unlock()
			if in := r.kin.lists[0].in; aws.ToString(in.StreamARN) != arn || in.StreamName != nil {
				t.Errorf("ListShards got StreamARN %q, StreamName %v; want the ARN only", aws.ToString(in.StreamARN), in.StreamName)
			}
			if in := r.kin.iterators[0]; aws.ToString(in.StreamARN) != arn || in.StreamName != nil {
				t.Errorf("GetShardIterator got StreamARN %q, StreamName %v; want the ARN only", aws.ToString(in.StreamARN), in.StreamName)
			}
			if len(r.kin.reads) == 0 || aws.ToString(r.kin.reads[0].in.StreamARN) != arn {
				t.Errorf("GetRecords did not get the stream ARN")
			}
		}},
		{"App", func(t *testing.T, r *rig) {
			ddb := &denyingDynamoDB{}
			cfg := r.config()
			cfg.App, cfg.LeaseStore, cfg.DynamoDB = "billing", nil, ddb
			if err := r.runToError(cfg); err == nil || !strings.Contains(err.Error(), "lease table") {
				t.Errorf("Run = %v, want the lease table error", err)
			}
			if got := ddb.tables(); !slices.Equal(got, []string{"billing"}) {
				t.Errorf("DescribeTable tables = %v, want [billing] (the App names the default table)", got)
			}
		}},
		{"LeaseTable", func(t *testing.T, r *rig) {
			ddb := &denyingDynamoDB{}
			cfg := r.config()
			cfg.LeaseTable, cfg.LeaseStore, cfg.DynamoDB = "billing-leases", nil, ddb
			if err := r.runToError(cfg); err == nil {
				t.Errorf("Run = nil, want the lease table error")
			}
			if got := ddb.tables(); !slices.Equal(got, []string{"billing-leases"}) {
				t.Errorf("DescribeTable tables = %v, want [billing-leases]", got)
			}
		}},
		{"WorkerID", func(t *testing.T, r *rig) {
			cfg := r.config()
			cfg.WorkerID = "worker-7"
			w, _ := r.run(cfg)
			r.waitHeld(t, w, 1)
			if l, _ := r.store.Get(context.Background(), shard0); l.Owner != "worker-7" || w.WorkerID() != "worker-7" {
				t.Errorf("lease owner %q, WorkerID() %q; want worker-7", l.Owner, w.WorkerID())
			}
		}},
		{"Processor", func(t *testing.T, r *rig) {
			putTo(t, r.fk, shard0, "k", []byte("x"))
			cfg := r.config()
			cfg.InitialPosition = checkpoint.TrimHorizon
			p := &recorder{}
			cfg.Processor = p
			r.run(cfg)
			wait.For(t, time.Minute, "the record at the processor", func() bool { return p.count() == 1 })
		}},
		{"NewProcessor", func(t *testing.T, r *rig) {
			putTo(t, r.fk, shard0, "k", []byte("x"))
			var mu sync.Mutex
			made := map[string]*recorder{}
			cfg := r.config()
			cfg.InitialPosition = checkpoint.TrimHorizon
			cfg.Processor = nil
			cfg.NewProcessor = func(shardID string) RecordProcessor {
				mu.Lock()
				defer mu.Unlock()
				made[shardID] = &recorder{}
				return made[shardID]
			}
			r.run(cfg)
			wait.For(t, time.Minute, "the record at the shard's processor", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return made[shard0] != nil && made[shard0].count() == 1
			})
		}},
		{"InitialPosition", func(t *testing.T, r *rig) {
			putTo(t, r.fk, shard0, "k", []byte("written before the start"))
			cfg := r.config()
			cfg.InitialPosition = checkpoint.TrimHorizon
			r.run(cfg)
			wait.For(t, time.Minute, "the record written before the start", func() bool { return r.rec.count() == 1 })
			if it := r.kin.firstIterator(); it.ShardIteratorType != types.ShardIteratorTypeTrimHorizon {
				t.Errorf("first iterator %s, want TRIM_HORIZON", it.ShardIteratorType)
			}
		}},
		{"InitialTimestamp", func(t *testing.T, r *rig) {
			putTo(t, r.fk, shard0, "k", []byte("before"))
			time.Sleep(time.Second)
			at := time.Now()
			time.Sleep(time.Second)
			after := putTo(t, r.fk, shard0, "k", []byte("after"))
			cfg := r.config()
			cfg.InitialPosition, cfg.InitialTimestamp = checkpoint.AtTimestamp, at
			r.run(cfg)
			wait.For(t, time.Minute, "the record after the timestamp", func() bool { return r.rec.count() == 1 })
			if got, _ := r.rec.snapshot(); got[0].SequenceNumber != after {
				t.Errorf("delivered %s, want %s", got[0].SequenceNumber, after)
			}
			if it := r.kin.firstIterator(); !aws.ToTime(it.Timestamp).Equal(at) {
				t.Errorf("iterator timestamp %v, want %v", aws.ToTime(it.Timestamp), at)
			}
		}},
		{"ClockSkewMargin", func(t *testing.T, r *rig) {
			// A LATEST start is pinned to the lease's creation, less the
			// margin: a record written just before is inside it.
			before := time.Now()
			seq := putTo(t, r.fk, shard0, "k", []byte("within the margin"))
			cfg := r.config()
			cfg.ClockSkewMargin = time.Minute
			r.run(cfg)
			wait.For(t, time.Minute, "the record written within the margin", func() bool { return r.rec.count() == 1 })
			if got, _ := r.rec.snapshot(); got[0].SequenceNumber != seq {
				t.Errorf("delivered %s, want %s", got[0].SequenceNumber, seq)
			}
			it := r.kin.firstIterator()
			if at := aws.ToTime(it.Timestamp); it.ShardIteratorType != types.ShardIteratorTypeAtTimestamp ||
				at.Before(before.Add(-time.Minute-time.Second)) || at.After(time.Now().Add(-time.Minute)) {
				t.Errorf("first iterator %s at %v, want AT_TIMESTAMP a minute before the lease was created (after %v)", it.ShardIteratorType, at, before)
			}
		}},
		{"OnProcessError", func(t *testing.T, r *rig) {
			putTo(t, r.fk, shard0, "k", []byte("poison"))
			cfg := r.config()
			cfg.InitialPosition, cfg.OnProcessError = checkpoint.TrimHorizon, StopShard
			attempts := r.failingProcessor(&cfg, 1000)
			r.run(cfg)
			time.Sleep(time.Minute) // the default policy would retry many times meanwhile
			if n := len(attempts()); n != 1 {
				t.Errorf("ProcessRecords attempts = %d with StopShard, want 1", n)
			}
		}},
		{"ProcessRetries", func(t *testing.T, r *rig) {
			for _, tc := range []struct {
				retries, attempts int
			}{{1, 2}, {NoRetries, 1}} {
				putTo(t, r.fk, shard0, "k", []byte("poison"))
				cfg := r.config()
				cfg.InitialPosition, cfg.OnProcessError, cfg.ProcessRetries = checkpoint.TrimHorizon, RetryThenSkip, tc.retries
				reg := prometheus.NewRegistry()
				cfg.Metrics = reg
				attempts := r.failingProcessor(&cfg, 1000)
				_, stop := r.run(cfg)
				skipped := newMetrics(reg).skipped
				wait.For(t, time.Minute, "the batch skipped", func() bool { return testutil.ToFloat64(skipped) == 1 })
				if n := len(attempts()); n != tc.attempts {
					t.Errorf("ProcessRetries %d: attempts = %d, want %d", tc.retries, n, tc.attempts)
				}
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				r.reset()
			}
		}},
		{"ProcessBackoffBase", func(t *testing.T, r *rig) {
			// Waits below 1ms, 2ms, 4ms: from the default 100ms they would
			// exceed that almost surely.
			putTo(t, r.fk, shard0, "k", []byte("poison"))
			cfg := r.config()
			cfg.InitialPosition, cfg.ProcessBackoffBase = checkpoint.TrimHorizon, time.Millisecond
			attempts := r.failingProcessor(&cfg, 3)
			r.run(cfg)
			wait.For(t, time.Minute, "the batch to succeed", func() bool { return r.rec.count() == 1 })
			checkGaps(t, attempts(), func(i int) time.Duration { return time.Millisecond << (i - 1) })
		}},
		{"ProcessBackoffMax", func(t *testing.T, r *rig) {
			// Ten waits, none above 150ms: with the default 10s, the
			// ceiling would pass 150ms from the second on.
			putTo(t, r.fk, shard0, "k", []byte("poison"))
			cfg := r.config()
			cfg.InitialPosition, cfg.ProcessBackoffMax = checkpoint.TrimHorizon, 150*time.Millisecond
			attempts := r.failingProcessor(&cfg, 10)
			r.run(cfg)
			wait.For(t, time.Minute, "the batch to succeed", func() bool { return r.rec.count() == 1 })
			checkGaps(t, attempts(), func(int) time.Duration { return 150 * time.Millisecond })
		}},
		{"ParentPollInterval", func(t *testing.T, r *rig) {
			// The parent is held by a worker of another process: its
			// child polls the lease table for it. (The child's other
			// parent has no lease: it needs no waiting for.)
			r.setStream(kinesistest.Config{Shards: 2})
			child := merge(t, r.fk, shard0, "shardId-000000000001")
			if _, err := r.store.Create(context.Background(), lease.Lease{Key: shard0, Owner: "elsewhere", Counter: 1, Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
				t.Fatal(err)
			}
			cfg := r.config()
			cfg.ParentPollInterval = 500 * time.Millisecond
			w, _ := r.run(cfg)
			wait.For(t, time.Minute, "the child's lease", func() bool { return slices.Equal(w.Shards(), []string{child}) })
			from := time.Now()
			time.Sleep(3 * time.Second) // within FailoverTime: the parent's lease stays with its owner
			checkEvery(t, r.store.times("get", shard0, from), 500*time.Millisecond)
		}},
		{"ShardSyncInterval", func(t *testing.T, r *rig) {
			cfg := r.config()
			cfg.ShardSyncInterval = 7 * time.Second
			r.run(cfg)
			time.Sleep(30 * time.Second)
			checkEvery(t, r.kin.listTimes(), 7*time.Second)
		}},
		{"AbortOnCancel", func(t *testing.T, r *rig) {
			cfg := r.config()
			cfg.AbortOnCancel = true
			w, stop := r.run(cfg)
			r.waitHeld(t, w, 1)
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if l, _ := r.store.Get(context.Background(), shard0); l.Owner != w.WorkerID() {
				t.Errorf("lease owner %q after an aborted run, want %q (left to expire)", l.Owner, w.WorkerID())
			}
			if _, events := r.rec.snapshot(); slices.Contains(events, "shutdown "+shard0) {
				t.Errorf("ShutdownRequested called on abort")
			}
		}},
		{"ShutdownTimeout", func(t *testing.T, r *rig) {
			blocked := make(chan struct{})
			cfg := r.config()
			cfg.ShutdownTimeout = 3 * time.Second
			cfg.Processor = &funcProcessor{
				process: func(context.Context, *Batch) error { return nil },
				shutdown: func(ctx context.Context, _ *ShutdownRequestedInput) error {
					close(blocked)
					<-ctx.Done()
					return ctx.Err()
				},
			}
			_, stop := r.run(cfg)
			r.waitIterators(t, 1)
			start := time.Now()
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			<-blocked
			if d := time.Since(start); d != 3*time.Second {
				t.Errorf("graceful shutdown took %v, want the ShutdownTimeout 3s", d)
			}
		}},
		{"Kinesis", func(t *testing.T, r *rig) {
			r.run(r.config())
			r.waitIterators(t, 1) // the spy sees the calls to r.config's Kinesis
		}},
		{"DynamoDB", func(t *testing.T, r *rig) {
			ddb := &denyingDynamoDB{}
			cfg := r.config()
			cfg.LeaseStore, cfg.DynamoDB = nil, ddb
			err := r.runToError(cfg)
			if len(ddb.tables()) == 0 || !strings.Contains(fmt.Sprint(err), "AccessDeniedException") {
				t.Errorf("Run = %v after %d DescribeTable calls; want the fake's AccessDeniedException", err, len(ddb.tables()))
			}
		}},
		{"LeaseStore", func(t *testing.T, r *rig) {
			w, _ := r.run(r.config())
			r.waitHeld(t, w, 1)
			if l, err := r.store.Get(context.Background(), shard0); err != nil || l.Owner != w.WorkerID() {
				t.Errorf("lease in the store: %+v, %v; want owned by %s", l, err, w.WorkerID())
			}
		}},
		{"Lease.FailoverTime", func(t *testing.T, r *rig) {
			// A dead worker's lease is taken FailoverTime after its
			// counter last moved.
			if _, err := r.store.Create(context.Background(), lease.Lease{Key: shard0, Owner: "dead", Counter: 1, Checkpoint: string(checkpoint.TrimHorizon)}); err != nil {
				t.Fatal(err)
			}
			cfg := r.config()
			cfg.Lease.FailoverTime = 4 * time.Second
			start := time.Now()
			w, _ := r.run(cfg)
			r.waitHeld(t, w, 1)
			if d := time.Since(start); d < 4*time.Second || d > 4*time.Second+cfg.Lease.FailoverTime/5 {
				t.Errorf("dead worker's lease taken after %v, want within FailoverTime 4s + TakeInterval", d)
			}
		}},
		{"Lease.RenewInterval", func(t *testing.T, r *rig) {
			cfg := r.config()
			cfg.Lease.RenewInterval = time.Second
			w, _ := r.run(cfg)
			r.waitHeld(t, w, 1)
			from := time.Now()
			time.Sleep(5 * time.Second)
			checkEvery(t, r.store.times("renew", shard0, from), time.Second)
		}},
		{"Lease.TakeInterval", func(t *testing.T, r *rig) {
			// The only worker leads: it renews the leader item every
			// TakeInterval (a follower reads it as often).
			cfg := r.config()
			cfg.Lease.TakeInterval = 500 * time.Millisecond
			w, _ := r.run(cfg)
			r.waitHeld(t, w, 1)
			from := time.Now()
			time.Sleep(5 * time.Second)
			checkEvery(t, r.store.times("renew_leader", "", from), 500*time.Millisecond)
		}},
		{"Lease.WorkerCheckInterval", func(t *testing.T, r *rig) {
			cfg := r.config()
			cfg.Lease.WorkerCheckInterval = 700 * time.Millisecond
			w, _ := r.run(cfg)
			r.waitHeld(t, w, 1)
			from := time.Now()
			time.Sleep(5 * time.Second)
			checkEvery(t, r.store.times("workers", "", from), 700*time.Millisecond)
		}},
		{"Lease.ScanInterval", func(t *testing.T, r *rig) {
			cfg := r.config()
			cfg.Lease.ScanInterval = 900 * time.Millisecond
			w, _ := r.run(cfg)
			r.waitHeld(t, w, 1)
			from := time.Now()
			time.Sleep(5 * time.Second) // no shard sync meanwhile (every 60s)
			checkEvery(t, r.store.times("list", "", from), 900*time.Millisecond)
		}},
		{"Lease.MaxLeasesForWorker", func(t *testing.T, r *rig) {
			r.setStream(kinesistest.Config{Shards: 4})
			cfg := r.config()
			cfg.Lease.MaxLeasesForWorker = 1
			w, _ := r.run(cfg)
			r.waitHeld(t, w, 1)
			time.Sleep(time.Minute)
			if n := len(w.coord.Held()); n != 1 {
				t.Errorf("leases held = %d of 4, want the cap 1", n)
			}
		}},
		{"Lease.BalanceByCount", func(t *testing.T, r *rig) {
			// A live peer holds the two hot shards of four. By throughput,
			// the worker asks for one of them once its own two are
			// measured (after its first renewals); by count it has its 2
			// of 4 and asks for nothing.
			for _, byCount := range []bool{false, true} {
				r.reset()
				r.setStream(kinesistest.Config{Shards: 4})
				for _, id := range []string{"shardId-000000000000", "shardId-000000000001"} {
					if _, err := r.store.Create(context.Background(), lease.Lease{Key: id, Owner: "peer", Counter: 1,
						Checkpoint: string(checkpoint.TrimHorizon), ThroughputKBps: 1000, ThroughputKnown: true}); err != nil {
						t.Fatal(err)
					}
				}
				// The peer's heartbeat: a live worker to the leader.
				if err := r.store.Heartbeat(context.Background(), lease.WorkerState{ID: "peer", Leases: 2}); err != nil {
					t.Fatal(err)
				}
				cfg := r.config()
				cfg.InitialPosition = checkpoint.TrimHorizon
				cfg.Lease.BalanceByCount, cfg.Lease.RenewInterval = byCount, time.Second
				cfg.Lease.ScanInterval = time.Second // a pass after the measurements
				w, stop := r.run(cfg)
				r.waitHeld(t, w, 2)
				time.Sleep(5 * time.Second) // renewals at 1s and 2s measure; the peer's leases expire only at 10s
				asked := 0
				ls, _ := r.store.List(context.Background())
				for _, l := range ls {
					if l.CheckpointOwner == "peer" {
						asked++
					}
				}
				if want := map[bool]int{false: 1, true: 0}[byCount]; asked != want {
					t.Errorf("BalanceByCount %v: %d hot leases asked of the peer, want %d", byCount, asked, want)
				}
				if err := stop(); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{"Lease.MaxConcurrentWrites", func(t *testing.T, r *rig) {
			r.setStream(kinesistest.Config{Shards: 6})
			r.store.renewTakes = 100 * time.Millisecond
			cfg := r.config()
			cfg.Lease.MaxConcurrentWrites = 2
			w, _ := r.run(cfg)
			r.waitHeld(t, w, 6)
			// Renewal passes at 3.3s and 6.7s; the worker stops between
			// passes (a renewal in flight holds the lease's mutex, and a
			// release waiting on a mutex would stop the bubble's clock).
			time.Sleep(5 * time.Second)
			if n := r.store.maxRenewing(); n != 2 {
				t.Errorf("renewals in flight at once = %d for 6 leases, want MaxConcurrentWrites 2", n)
			}
		}},
		{"Retrieval.MaxRecords", func(t *testing.T, r *rig) {
			for range 20 {
				putTo(t, r.fk, shard0, "k", []byte("x"))
			}
			cfg := r.config()
			cfg.InitialPosition, cfg.Retrieval.MaxRecords = checkpoint.TrimHorizon, 7
			r.run(cfg)
			wait.For(t, time.Minute, "20 records", func() bool { return r.rec.count() == 20 })
			if in := r.kin.firstRead(); aws.ToInt32(in.Limit) != 7 {
				t.Errorf("GetRecords Limit %d, want 7", aws.ToInt32(in.Limit))
			}
		}},
		{"Retrieval.IdleWait", func(t *testing.T, r *rig) {
			cfg := r.config()
			cfg.Retrieval.IdleWait = 3 * time.Second
			r.run(cfg)
			r.waitIterators(t, 1)
			time.Sleep(20 * time.Second)
			checkEvery(t, r.kin.readTimes(), 3*time.Second)
		}},
		{"Retrieval.CallInterval", func(t *testing.T, r *rig) {
			for range 50 {
				putTo(t, r.fk, shard0, "k", []byte("x"))
			}
			cfg := r.config()
			cfg.InitialPosition, cfg.Retrieval.MaxRecords, cfg.Retrieval.CallInterval = checkpoint.TrimHorizon, 10, 700*time.Millisecond
			r.run(cfg)
			wait.For(t, time.Minute, "50 records", func() bool { return r.rec.count() == 50 })
			checkEvery(t, r.kin.readTimes()[:5], 700*time.Millisecond)
		}},
		{"Retrieval.PrefetchBytes", func(t *testing.T, r *rig) {
			for range 20 {
				putTo(t, r.fk, shard0, "k", []byte("0123456789"))
			}
			release := make(chan struct{})
			cfg := r.config()
			cfg.InitialPosition, cfg.Retrieval.MaxRecords, cfg.Retrieval.PrefetchBytes = checkpoint.TrimHorizon, 10, 50
			r.rec.fail = func(ctx context.Context, _ *Batch) error {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return nil
			}
			r.run(cfg)
			r.waitIterators(t, 1)
			time.Sleep(10 * time.Second)
			if n := len(r.kin.readTimes()); n != 1 {
				t.Errorf("GetRecords calls while a batch of 100 bytes is processed = %d, want 1 (PrefetchBytes 50)", n)
			}
			close(release)
			wait.For(t, time.Minute, "every record", func() bool { return r.rec.count() == 20 })
		}},
		{"Retrieval.BackoffBase", func(t *testing.T, r *rig) {
			// From 1h, some of the first three waits exceeds 800ms (the
			// third ceiling from the default 200ms) all but surely.
			r.failReads(3)
			cfg := r.config()
			cfg.Retrieval.BackoffBase, cfg.Retrieval.BackoffMax = time.Hour, time.Hour
			r.run(cfg)
			time.Sleep(3*time.Hour + time.Minute)
			gaps := gapsOf(r.kin.readTimes()[:4])
			if slices.Max(gaps) <= 800*time.Millisecond || slices.Max(gaps) > time.Hour {
				t.Errorf("waits after failed reads %v: want one above 800ms, none above 1h", gaps)
			}
		}},
		{"Retrieval.BackoffMax", func(t *testing.T, r *rig) {
			// Eight waits, none above 1s: from the default 5s cap, the
			// ceiling reaches 1.6s at the fifth.
			r.failReads(8)
			cfg := r.config()
			cfg.Retrieval.BackoffMax = time.Second
			r.run(cfg)
			wait.For(t, time.Hour, "nine reads", func() bool { return len(r.kin.readTimes()) >= 9 })
			checkGaps(t, r.kin.readTimes()[:9], func(int) time.Duration { return time.Second })
		}},
		{"Retrieval.Mode", func(t *testing.T, r *rig) {
			seqs := putMany(t, r.fk, 3)
			cfg := r.config()
			cfg.InitialPosition, cfg.Retrieval.Mode = checkpoint.TrimHorizon, RetrievalFanOut
			fan := r.runFanOut(cfg)
			wait.For(t, time.Minute, "3 records", func() bool { return r.rec.count() == 3 })
			calls := fan.calls()
			if len(calls) != 1 || calls[0].Type != types.ShardIteratorTypeTrimHorizon {
				t.Errorf("SubscribeToShard calls %+v, want one from TRIM_HORIZON", calls)
			}
			recs, _ := r.rec.snapshot()
			if len(recs) != 3 || recs[0].SequenceNumber != seqs[0] || recs[2].SequenceNumber != seqs[2] {
				t.Errorf("delivered %+v, want %v", recs, seqs)
			}
		}},
		{"Retrieval.ConsumerName", func(t *testing.T, r *rig) {
			cfg := r.config()
			cfg.Retrieval.Mode, cfg.Retrieval.ConsumerName = RetrievalFanOut, "billing.reader"
			fan := r.runFanOut(cfg)
			wait.For(t, time.Minute, "a subscription", func() bool { return len(fan.calls()) == 1 })
			if got := fan.registered(); !slices.Equal(got, []string{"billing.reader"}) {
				t.Errorf("consumers registered %v, want [billing.reader]", got)
			}
		}},
		{"Logger", func(t *testing.T, r *rig) {
			core, logs := observer.New(zap.InfoLevel)
			cfg := r.config()
			cfg.Logger = zap.New(core)
			w, _ := r.run(cfg)
			r.waitHeld(t, w, 1)
			for _, msg := range []string{"worker started", "lease taken"} { // the worker's, the lease layer's
				if n := logs.FilterMessage(msg).FilterField(zap.String("worker", w.WorkerID())).Len(); n != 1 {
					t.Errorf("%q logged %d times, want once", msg, n)
				}
			}
		}},
		{"Metrics", func(t *testing.T, r *rig) {
			reg := prometheus.NewRegistry()
			cfg := r.config()
			cfg.Metrics = reg
			w, _ := r.run(cfg)
			r.waitHeld(t, w, 1)
			wait.For(t, time.Minute, "kinesis_kcl_leases_held at 1", func() bool {
				return testutil.ToFloat64(newMetrics(reg).shards) == 1
			})
			names := map[string]bool{}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			for _, mf := range mfs {
				names[mf.GetName()] = true
			}
			for _, n := range []string{"kinesis_kcl_leases_held", "kinesis_kcl_child_lease_errors_total", "kinesis_kcl_checkpoint_errors_total",
				"kinesis_lease_held", "kinesis_lease_created_total"} {
				if !names[n] {
					t.Errorf("metric %s not registered", n)
				}
			}
		}},
	}

	covered := map[string]bool{}
	for _, row := range rows {
		covered[row.field] = true
	}
	for _, f := range configFields(reflect.TypeFor[Config](), "") {
		if !covered[f] {
			t.Errorf("Config.%s has no row: show that it takes effect (or is rejected)", f)
		}
		delete(covered, f)
	}
	for f := range covered {
		t.Errorf("row %s names no field of Config", f)
	}
	for _, row := range rows {
		t.Run(row.field, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { row.check(t, newRig(t)) })
		})
	}
}

// configFields lists the fields of a struct type of this package, those of
// nested struct types of this package by their path (Lease.FailoverTime).
func configFields(typ reflect.Type, prefix string) []string {
	var out []string
	for i := range typ.NumField() {
		f := typ.Field(i)
		if f.Type.Kind() == reflect.Struct && f.Type.PkgPath() == typ.PkgPath() {
			out = append(out, configFields(f.Type, prefix+f.Name+".")...)
			continue
		}
		out = append(out, prefix+f.Name)
	}
	return out
}

// checkEvery checks that the times are every d apart (the same instant
// counting once: several goroutines may make the call at once).
func checkEvery(t *testing.T, ts []time.Time, d time.Duration) {
	t.Helper()
	ts = slices.CompactFunc(ts, time.Time.Equal)
	if len(ts) < 3 {
		t.Fatalf("%d calls, want 3 or more to measure the interval", len(ts))
	}
	for _, g := range gapsOf(ts) {
		if g != d {
			t.Fatalf("calls at intervals %v, want every %v", gapsOf(ts), d)
		}
	}
}

// checkGaps checks that the i-th gap (from 1) between the times is at most
// ceiling(i).
func checkGaps(t *testing.T, ts []time.Time, ceiling func(i int) time.Duration) {
	t.Helper()
	if len(ts) < 2 {
		t.Fatalf("%d calls, want 2 or more", len(ts))
	}
	for i, g := range gapsOf(ts) {
		if g > ceiling(i+1) {
			t.Errorf("wait %d = %v, want at most %v (all: %v)", i+1, g, ceiling(i+1), gapsOf(ts))
		}
	}
}

func gapsOf(ts []time.Time) []time.Duration {
	var out []time.Duration
	for i := 1; i < len(ts); i++ {
		out = append(out, ts[i].Sub(ts[i-1]))
	}
	return out
}

// rig is what a worker under test in a synctest bubble runs on: a one-shard
// in-memory stream whose calls a spy records, a memory lease table behind a
// spy, and a recorder as processor.
type rig struct {
	t     *testing.T
	fk    *kinesistest.Stream
	kin   *spyKinesis
	store *spyStore
	rec   *recorder
}

func newRig(t *testing.T) *rig {
	r := &rig{t: t, kin: &spyKinesis{}, store: &spyStore{MemoryStore: lease.NewMemoryStore()}, rec: &recorder{}}
	r.setStream(kinesistest.Config{})
	return r
}

// setStream gives the rig the stream of cfg (named "stream", the name in
// r.config, unless cfg names it), its calls recorded by the spy. It is
// called before the worker runs.
func (r *rig) setStream(cfg kinesistest.Config) {
	r.t.Helper()
	if cfg.StreamName == "" && cfg.StreamARN == "" {
		cfg.StreamName = "stream"
	}
	cfg.Fault = r.kin.fault
	r.fk = newStreamOf(r.t, cfg)
}

// reset gives the rig a fresh stream and lease table.
func (r *rig) reset() {
	*r = *newRig(r.t)
}

// config is the least configuration: every other field at its default.
func (r *rig) config() Config {
	return Config{Stream: "stream", App: "app", Kinesis: r.fk, LeaseStore: r.store, Processor: r.rec}
}

// run starts a worker; stop cancels its Run (a graceful shutdown unless
// AbortOnCancel) and returns Run's error. The worker stops when the test
// ends at the latest.
func (r *rig) run(cfg Config) (*Worker, func() error) {
	r.t.Helper()
	w, err := New(cfg)
	if err != nil {
		r.t.Fatalf("New: %v", err)
	}
	return w, r.start(w)
}

// start runs a worker made with New, as run does.
func (r *rig) start(w *Worker) func() error {
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-errc })
		return runErr
	}
	r.t.Cleanup(func() {
		if err := stop(); err != nil {
			r.t.Errorf("Run: %v", err)
		}
	})
	return stop
}

// runToError runs a worker that is expected to fail, and returns Run's
// error.
func (r *rig) runToError(cfg Config) error {
	r.t.Helper()
	w, err := New(cfg)
	if err != nil {
		r.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	return w.Run(ctx)
}

func (r *rig) waitHeld(t *testing.T, w *Worker, n int) {
	t.Helper()
	wait.For(t, time.Minute, fmt.Sprintf("%d leases held", n), func() bool { return len(w.Shards()) == n })
}

func (r *rig) waitIterators(t *testing.T, n int) {
	t.Helper()
	wait.For(t, time.Minute, fmt.Sprintf("%d shard iterators", n), func() bool {
		r.kin.mu.Lock()
		defer r.kin.mu.Unlock()
		return len(r.kin.iterators) >= n
	})
}

// failingProcessor makes cfg's processor fail the first failures calls of
// ProcessRecords, and returns a function that tells when each call was
// made.
func (r *rig) failingProcessor(cfg *Config, failures int) func() []time.Time {
	var mu sync.Mutex
	var at []time.Time
	r.rec.fail = func(context.Context, *Batch) error {
		mu.Lock()
		defer mu.Unlock()
		at = append(at, time.Now())
		if len(at) <= failures {
			return errors.New("processing failed")
		}
		return nil
	}
	cfg.Processor = r.rec
	return func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(at)
	}
}

// failReads fails the next n GetRecords calls with a service fault, which
// keeps the iterator.
func (r *rig) failReads(n int) {
	r.kin.mu.Lock()
	defer r.kin.mu.Unlock()
	r.kin.failReads = n
}

// spyKinesis records the calls made to the rig's stream: its fault is the
// stream's Config.Fault.
type spyKinesis struct {
	mu        sync.Mutex
	lists     []timed[kinesis.ListShardsInput]
	iterators []kinesis.GetShardIteratorInput
	reads     []timed[kinesis.GetRecordsInput]
	// failReads is the number of GetRecords calls still to fail.
	failReads int
}

type timed[T any] struct {
	at time.Time
	in T
}

func (s *spyKinesis) fault(_ context.Context, c kinesistest.Call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch in := c.Input.(type) {
	case *kinesis.ListShardsInput:
		s.lists = append(s.lists, timed[kinesis.ListShardsInput]{time.Now(), *in})
	case *kinesis.GetShardIteratorInput:
		s.iterators = append(s.iterators, *in)
	case *kinesis.GetRecordsInput:
		s.reads = append(s.reads, timed[kinesis.GetRecordsInput]{time.Now(), *in})
		if s.failReads > 0 {
			s.failReads--
			return &smithy.GenericAPIError{Code: "InternalFailure", Message: "injected", Fault: smithy.FaultServer}
		}
	}
	return nil
}

func (s *spyKinesis) firstIterator() kinesis.GetShardIteratorInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.iterators[0]
}

func (s *spyKinesis) firstRead() kinesis.GetRecordsInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads[0].in
}

func (s *spyKinesis) readTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, c := range s.reads {
		out = append(out, c.at)
	}
	return out
}

func (s *spyKinesis) listTimes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, c := range s.lists {
		out = append(out, c.at)
	}
	return out
}

// spyStore records the calls made to a memory lease table.
type spyStore struct {
	*lease.MemoryStore
	// renewTakes makes every renewal last that long.
	renewTakes time.Duration

	mu                 sync.Mutex
	calls              []storeCall
	renewing, maxRenew int
}

type storeCall struct {
	op, key string
	at      time.Time
}

func (s *spyStore) note(op, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, storeCall{op, key, time.Now()})
}

// times returns when the calls op on key were made, from a time on.
func (s *spyStore) times(op, key string, from time.Time) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, c := range s.calls {
		if c.op == op && c.key == key && !c.at.Before(from) {
			out = append(out, c.at)
		}
	}
	return out
}

func (s *spyStore) maxRenewing() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxRenew
}

func (s *spyStore) List(ctx context.Context) ([]lease.Lease, error) {
	s.note("list", "")
	return s.MemoryStore.List(ctx)
}

func (s *spyStore) RenewLeader(ctx context.Context, l lease.LeaderState, notify []string) (lease.LeaderState, error) {
	s.note("renew_leader", "")
	return s.MemoryStore.RenewLeader(ctx, l, notify)
}

func (s *spyStore) Workers(ctx context.Context) ([]lease.WorkerState, error) {
	s.note("workers", "")
	return s.MemoryStore.Workers(ctx)
}

func (s *spyStore) Get(ctx context.Context, key string) (lease.Lease, error) {
	s.note("get", key)
	return s.MemoryStore.Get(ctx, key)
}

func (s *spyStore) Renew(ctx context.Context, l lease.Lease) (lease.Lease, error) {
	s.note("renew", l.Key)
	s.mu.Lock()
	s.renewing++
	s.maxRenew = max(s.maxRenew, s.renewing)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.renewing--
		s.mu.Unlock()
	}()
	time.Sleep(s.renewTakes)
	return s.MemoryStore.Renew(ctx, l)
}

// denyingDynamoDB is a DynamoDB client that refuses every table: it
// records the tables asked for and fails with AccessDeniedException.
type denyingDynamoDB struct {
	DynamoDBAPI // nil: other calls panic
	mu          sync.Mutex
	asked       []string
}

func (d *denyingDynamoDB) DescribeTable(_ context.Context, in *dynamodb.DescribeTableInput, _ ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	d.mu.Lock()
	d.asked = append(d.asked, aws.ToString(in.TableName))
	d.mu.Unlock()
	return nil, &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "injected", Fault: smithy.FaultClient}
}

func (d *denyingDynamoDB) tables() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.asked)
}
