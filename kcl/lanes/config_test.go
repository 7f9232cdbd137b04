package lanes

import (
	"context"
	"strings"
	"testing"
	"time"
)

type nopDestination struct{}

func (nopDestination) Send(context.Context, *Failure) error { return nil }

func TestConfigValidate(t *testing.T) {
	h := HandlerFunc(func(context.Context, *Batch) error { return nil })
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // in the error; "" for valid
	}{
		{"zero but the handler", Config{Handler: h}, ""},
		{"all set", Config{Handler: h, Parallelism: 10, MaxInFlight: 500, BatchSize: 100, BatchBytes: 1 << 20,
			BatchWindow: time.Second, MaxRetries: 3, MaxRecordAge: time.Hour, Bisect: true, Destination: nopDestination{},
			RetryBackoffBase: time.Millisecond, RetryBackoffMax: time.Second, CheckpointInterval: time.Second}, ""},
		{"negative checkpoint interval", Config{Handler: h, CheckpointInterval: -time.Second}, "CheckpointInterval"},
		{"no retries", Config{Handler: h, MaxRetries: NoRetries, Destination: nopDestination{}}, ""},
		{"no handler", Config{}, "Handler"},
		{"parallelism too high", Config{Handler: h, Parallelism: MaxParallelism + 1}, "Parallelism"},
		{"negative parallelism", Config{Handler: h, Parallelism: -1}, "Parallelism"},
		{"negative batch size", Config{Handler: h, BatchSize: -1}, "BatchSize"},
		{"negative in flight", Config{Handler: h, MaxInFlight: -1}, "MaxInFlight"},
		{"window without a size", Config{Handler: h, BatchWindow: time.Second}, "BatchWindow"},
		{"window with bytes", Config{Handler: h, BatchWindow: time.Second, BatchBytes: 100}, ""},
		{"retries below NoRetries", Config{Handler: h, MaxRetries: -2, Destination: nopDestination{}}, "MaxRetries"},
		{"retries without destination", Config{Handler: h, MaxRetries: 3}, "Destination is required"},
		{"age without destination", Config{Handler: h, MaxRecordAge: time.Minute}, "Destination is required"},
		{"destination without limits", Config{Handler: h, Destination: nopDestination{}}, "no effect"},
		{"backoff max below base", Config{Handler: h, RetryBackoffBase: time.Second, RetryBackoffMax: time.Millisecond}, "RetryBackoffMax"},
		{"negative age", Config{Handler: h, MaxRecordAge: -time.Second, Destination: nopDestination{}, MaxRetries: 1}, "MaxRecordAge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Parallelism != 1 || c.MaxInFlight != DefaultMaxInFlight || c.RetryBackoffBase != DefaultRetryBackoffBase ||
		c.RetryBackoffMax != DefaultRetryBackoffMax || c.Logger == nil || !c.keepsDeliveries() {
		t.Errorf("defaults: %+v", c)
	}
	if c := (Config{RetryBackoffBase: time.Minute}).withDefaults(); c.RetryBackoffMax != time.Minute {
		t.Errorf("RetryBackoffMax with a base of 1m = %v, want 1m", c.RetryBackoffMax)
	}
}
