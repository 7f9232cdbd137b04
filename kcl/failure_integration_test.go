package kcl_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl"
)

// TestIntegrationStreamDeletedStopsRun: a worker whose stream is deleted
// under it stops, and Run returns an error wrapping Kinesis's
// ResourceNotFoundException, instead of backing off for ever and
// returning nil.
func TestIntegrationStreamDeletedStopsRun(t *testing.T) {
	for _, idle := range []bool{false, true} {
		name := "reading"
		if idle {
			name = "holding no lease"
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, 1)
			run := func(cfg kcl.Config) chan error {
				w, err := kcl.New(cfg)
				if err != nil {
					t.Fatal(err)
				}
				errc := make(chan error, 1)
				go func() { errc <- w.Run(context.Background()) }()
				return errc
			}
			var errcs []chan error
			if idle {
				errcs = append(errcs, run(e.config("worker-a"))) // holds the only lease
				wait.For(t, 30*time.Second, "worker-a holding the lease", func() bool { return e.owners()["worker-a"] == 1 })
				errcs = append(errcs, run(e.config("worker-b"))) // none left for it
			} else {
				errcs = append(errcs, run(e.config("worker-a")))
			}
			cfg := e.config("worker-a")
			if !idle {
				p := &producer{client: e.kinesis, stream: e.stream}
				p.put(t, 10, 2)
				wait.For(t, 30*time.Second, "the records", func() bool { return e.collector.distinct() >= p.total() })
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := e.kinesis.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(e.stream)}); err != nil {
				t.Fatal(err)
			}
			within := cfg.ShardSyncInterval + 30*time.Second
			deadline := time.After(within)
			for i, errc := range errcs {
				select {
				case err := <-errc:
					var nf *kintypes.ResourceNotFoundException
					if !errors.As(err, &nf) {
						t.Fatalf("worker %d: Run = %v, want an error wrapping ResourceNotFoundException", i, err)
					}
					t.Logf("worker %d: Run: %v", i, err)
				case <-deadline:
					t.Fatalf("worker %d: Run did not return within %v of the stream's deletion", i, within)
				}
			}
		})
	}
}
