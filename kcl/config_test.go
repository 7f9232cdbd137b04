package kcl

import (
	"context"
	"errors"
	"github.com/kinesisgo/kinesis/checkpoint"
	"strings"
	"testing"
	"time"

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
		{"no app", func(c *Config) { c.App = "" }, "App is required"},
		{"no processor", func(c *Config) { c.Processor = nil }, "one of Processor and NewProcessor"},
		{"both processors", func(c *Config) { c.NewProcessor = func(string) RecordProcessor { return proc } }, "only one of Processor"},
		{"factory only", func(c *Config) { c.Processor, c.NewProcessor = nil, func(string) RecordProcessor { return proc } }, ""},
		{"bad position", func(c *Config) { c.InitialPosition = "OLDEST" }, `InitialPosition "OLDEST"`},
		{"timestamp without time", func(c *Config) { c.InitialPosition = checkpoint.AtTimestamp }, "needs InitialTimestamp"},
		{"timestamp", func(c *Config) { c.InitialPosition, c.InitialTimestamp = checkpoint.AtTimestamp, time.Now() }, ""},
		{"bad action", func(c *Config) { c.OnProcessError = 7 }, "OnProcessError ErrorAction(7)"},
		{"negative retries", func(c *Config) { c.ProcessRetries = -1 }, "ProcessRetries -1"},
		{"negative duration", func(c *Config) { c.Retrieval.IdleWait = -time.Second }, "Retrieval.IdleWait -1s is negative"},
		{"max records", func(c *Config) { c.Retrieval.MaxRecords = 10001 }, "Retrieval.MaxRecords 10001"},
		{"call interval", func(c *Config) { c.Retrieval.CallInterval = 100 * time.Millisecond }, "below 200ms"},
		{"prefetch", func(c *Config) { c.Retrieval.PrefetchBytes = -1 }, "PrefetchBytes -1"},
		{"backoff order", func(c *Config) { c.Retrieval.BackoffBase, c.Retrieval.BackoffMax = time.Second, time.Millisecond }, "exceeds Retrieval.BackoffMax"},
		{"process backoff order", func(c *Config) { c.ProcessBackoffBase, c.ProcessBackoffMax = time.Second, time.Millisecond }, "exceeds ProcessBackoffMax"},
		{"lease renew interval", func(c *Config) { c.Lease.FailoverTime, c.Lease.RenewInterval = time.Second, 2*time.Second }, "Lease: lease: Config.RenewInterval 2s"},
		{"lease take interval", func(c *Config) { c.Lease.TakeInterval = -time.Second }, "Lease: lease: Config.TakeInterval -1s"},
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
		c.ShutdownTimeout != 20*time.Second || c.ParentPollInterval != 2*time.Second || c.WorkerID == "" {
		t.Fatalf("defaults: %+v", c)
	}
	if d := (Config{Stream: "s", App: "a"}).withDefaults(); d.WorkerID == c.WorkerID {
		t.Errorf("two workers got the same default ID %q", d.WorkerID)
	}
}

func TestNewRejectsBadLeaseSettings(t *testing.T) {
	_, err := New(Config{Stream: "s", App: "a", Processor: ProcessorFunc(func(context.Context, *Batch) error { return nil }),
		Kinesis: newFakeKinesis(1), LeaseStore: lease.NewMemoryStore(),
		Lease: lease.Config{FailoverTime: time.Second, RenewInterval: 2 * time.Second}})
	if err == nil || !strings.Contains(err.Error(), "RenewInterval") {
		t.Fatalf("New = %v, want an error naming RenewInterval", err)
	}
}

func TestStreamARN(t *testing.T) {
	r := parseStream("arn:aws:kinesis:us-east-1:123456789012:stream/events")
	if r.name != "" || r.arn == "" || *r.arnOrNil() != r.arn || r.nameOrNil() != nil {
		t.Fatalf("ARN parsed as %+v", r)
	}
	r = parseStream("events")
	if r.name != "events" || r.arnOrNil() != nil {
		t.Fatalf("name parsed as %+v", r)
	}
}
