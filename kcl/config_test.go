package kcl

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go"

	"github.com/kinesisgo/kinesis/checkpoint"
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
		c.Lease != (LeaseConfig{FailoverTime: 10 * time.Second, RenewInterval: 10 * time.Second / 3, TakeInterval: 10 * time.Second / 6, MaxConcurrentWrites: 16}) {
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
