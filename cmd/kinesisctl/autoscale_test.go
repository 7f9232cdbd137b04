package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/autoscale"
	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

// autoscale --once through the proxy, which serves the CloudWatch metrics
// of what its write limits admitted: a dry run decides without resharding,
// a real run splits.
func TestAutoscaleOnce(t *testing.T) {
	t.Parallel()
	px := proxy.StartForTest(t, proxy.Config{})
	kc := testenv.KinesisClientAt(t, px.URL())
	stream := testenv.CreateStream(t, kc, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { // a light steady load, until the test ends
		defer close(done)
		for n := 0; ctx.Err() == nil; n++ {
			var entries []kintypes.PutRecordsRequestEntry
			for i := range 10 {
				entries = append(entries, kintypes.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprintf("key-%d-%d", n, i)), Data: []byte("payload")})
			}
			_, _ = kc.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
			time.Sleep(100 * time.Millisecond) // pacing the load, not waiting for a condition
		}
	}()
	defer func() { cancel(); <-done }()

	flags := []string{"--endpoint-url", px.URL(), "autoscale", stream, "--once", "--target", "0.0001", "--low", "-1", "--window", "2s", "--period", "1s", "--sample-records", "200"}
	var ev autoscale.Evaluation
	wait.For(t, 30*time.Second, "an evaluation with complete metrics", func() bool {
		r := mustRun(t, append(flags, "--dry-run", "--json")...)
		if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil {
			t.Fatalf("autoscale --json: %v\n%s", err, r.stdout)
		}
		return len(ev.Shards) == 1 && ev.Shards[0].Complete
	})
	if ev.Action != autoscale.Split || ev.SplitBy != "median" || ev.Acted || !ev.DryRun || ev.Shards[0].SampleSize < 50 {
		t.Errorf("dry run: %+v, want a split at the median, not started", ev)
	}
	if shards, err := listShards(ctx, kc, stream); err != nil || len(shards) != 1 {
		t.Errorf("the dry run resharded: %d shards, %v", len(shards), err)
	}

	human := mustRun(t, append(flags, "--dry-run")...).stdout
	for _, want := range []string{"split shardId-000000000000 at", "dry run: not started", "UTILIZATION", "complete"} {
		if !strings.Contains(human, want) {
			t.Errorf("autoscale output lacks %q:\n%s", want, human)
		}
	}

	var acted autoscale.Evaluation
	if err := json.Unmarshal([]byte(mustRun(t, append(flags, "--json")...).stdout), &acted); err != nil {
		t.Fatal(err)
	}
	if !acted.Acted || acted.Action != autoscale.Split {
		t.Errorf("autoscale --once: %+v, want a split started", acted)
	}
	shards, err := listShards(ctx, kc, stream)
	if err != nil || len(shards) != 3 {
		t.Errorf("after the split: %d shards, %v", len(shards), err)
	}

	wantExit(t, kctl(t, "--endpoint-url", px.URL(), "autoscale", stream, "--once", "--window", "3s", "--period", "2s"), exitUsage, "multiple of Period")
	wantExit(t, kctl(t, "--endpoint-url", px.URL(), "autoscale", stream+"-missing", "--once"), exitNotFound)
	wantExit(t, kctl(t, "--endpoint-url", px.URL(), "autoscale", stream, "--once", "--leases", stream+"-no-table"), exitNotFound, "no lease table")
}
