package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/kinesisgo/kinesis/autoscale"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/spf13/cobra"
)

func (a *app) autoscaleCommand() *cobra.Command {
	var (
		once, dryRun bool
		leaseTable   string
		cfg          autoscale.Config
	)
	cmd := &cobra.Command{
		Use:   "autoscale STREAM [--once] [--dry-run]",
		Short: "Split hot shards at their traffic median and merge cold ones, in a loop",
		Long: `Evaluate the stream every --interval and reshard it: split the hottest shard
above --target of its write limit (1 MiB/s, 1,000 records/s; writes refused
for throughput count as demand) at the hash key that halves its traffic, found
from a sample of its recent records' hash keys (at the midpoint of its range
without one), or merge the coldest two adjacent shards once both stayed below
--low for --merge-after. One resharding at a time (it waits for ACTIVE),
--min-shards and --max-shards, a --cooldown between actions, and shards whose
metrics are incomplete are left alone.

The metrics are CloudWatch's shard-level IncomingBytes, IncomingRecords and
WriteProvisionedThroughputExceeded (GetMetricData, statistic Sum, over
--window ending at the last whole --period): enable them on the stream
(aws kinesis enable-enhanced-monitoring --shard-level-metrics IncomingBytes
IncomingRecords WriteProvisionedThroughputExceeded). The CloudWatch endpoint
is --endpoint-url, AWS_ENDPOINT_URL_CLOUDWATCH or AWS_ENDPOINT_URL. With
--leases APP, a shard whose CloudWatch metrics are incomplete is judged by
the read rate the kcl application APP measured on its lease (throughputKBps),
while the lease is held.

Every evaluation is printed with its inputs (--json: one JSON object per
evaluation). --once makes one evaluation; --dry-run decides without
resharding. Without --once it runs until interrupted, which ends it with
exit code 0.`,
		Args: args("STREAM"),
	}
	f := cmd.Flags()
	f.BoolVar(&once, "once", false, "make one evaluation and exit")
	f.BoolVar(&dryRun, "dry-run", false, "decide and print, do not split or merge")
	f.Float64Var(&cfg.Plan.TargetUtilization, "target", autoscale.DefaultTargetUtilization, "split a shard above this share of its write limit")
	f.Float64Var(&cfg.Plan.LowUtilization, "low", autoscale.DefaultLowUtilization, "merge two adjacent shards below this share (negative: never merge)")
	f.IntVar(&cfg.Plan.MinShards, "min-shards", 1, "never merge below this many open shards")
	f.IntVar(&cfg.Plan.MaxShards, "max-shards", 0, "never split at this many open shards (0: no maximum)")
	f.DurationVar(&cfg.Plan.Cooldown, "cooldown", autoscale.DefaultCooldown, "least time between two actions")
	f.DurationVar(&cfg.Plan.MergeAfter, "merge-after", autoscale.DefaultMergeAfter, "how long two shards must stay below --low before they merge")
	f.DurationVar(&cfg.Interval, "interval", autoscale.DefaultInterval, "time between evaluations")
	f.DurationVar(&cfg.Window, "window", autoscale.DefaultWindow, "traffic read per evaluation, a multiple of --period")
	f.DurationVar(&cfg.Period, "period", autoscale.DefaultPeriod, "CloudWatch period of the metrics, whole seconds (shard-level metrics: multiples of 1m)")
	f.StringVar(&leaseTable, "leases", "", "lease table of a kcl application reading the stream: its measured read rates stand in for missing CloudWatch metrics")
	f.IntVar(&cfg.SampleRecords, "sample-records", autoscale.DefaultSampleRecords, "recent records of a hot shard read for the hash key sample (negative: none, split at the midpoint)")
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		ctx := cmd.Context()
		cfg.Stream, cfg.DryRun = argv[0], dryRun
		if err := cfg.Validate(); err != nil {
			return usageErr("%v", err)
		}
		kc, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		if _, err := describeStream(ctx, kc, cfg.Stream); err != nil {
			return err
		}
		awsCfg, err := a.awsConfig(ctx)
		if err != nil {
			return err
		}
		cfg.Kinesis = kc
		if leaseTable != "" {
			if _, err := a.describeLeaseTable(ctx, leaseTable); err != nil {
				return err
			}
			_, store, err := a.leaseStore(ctx, leaseTable)
			if err != nil {
				return err
			}
			cfg.Leases = store
		}
		cfg.CloudWatch = cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) {
			if a.endpoint != "" {
				o.BaseEndpoint = aws.String(a.endpoint)
			}
		})
		s, err := autoscale.New(cfg)
		if err != nil {
			return usageErr("%v", err)
		}
		for {
			ev, err := s.Once(ctx)
			if err != nil {
				if ctx.Err() != nil && !once {
					return nil // interrupted: how the loop stops
				}
				return err
			}
			if err := a.printEvaluation(ev); err != nil {
				return err
			}
			if once {
				return nil
			}
			if err := backoff.Sleep(ctx, cfg.Interval); err != nil {
				return nil
			}
		}
	})
	return cmd
}

// printEvaluation prints one evaluation: a JSON line with --json, else the
// decision and a table of the shards' inputs.
func (a *app) printEvaluation(ev autoscale.Evaluation) error {
	if a.json {
		return json.NewEncoder(a.stdout).Encode(ev)
	}
	return printEvaluationTable(a.stdout, ev)
}

func printEvaluationTable(w io.Writer, ev autoscale.Evaluation) error {
	what := string(ev.Action)
	switch ev.Action {
	case autoscale.Split:
		what = fmt.Sprintf("split %s at %s (%s", ev.Shard, ev.SplitAt, ev.SplitBy)
		if ev.SplitBy == "median" {
			what += fmt.Sprintf(", %.0f%% of the sample below", 100*ev.SampleBelow)
		}
		what += ")"
	case autoscale.Merge:
		what = fmt.Sprintf("merge %s and %s", ev.Shard, ev.Adjacent)
	}
	switch {
	case ev.Acted:
		what += ", started"
	case ev.DryRun && ev.Action != autoscale.None:
		what += ", dry run: not started"
	}
	fmt.Fprintf(w, "%s %s: %s: %s\n", ev.Time.UTC().Format(time.RFC3339), ev.Stream, what, ev.Reason)
	t := newTable(w, "SHARD", "UTILIZATION", "KIB/S", "RECORDS/S", "THROTTLED/S", "METRICS", "SAMPLE")
	for _, u := range ev.Shards {
		metrics := "complete"
		if !u.Complete {
			metrics = "incomplete"
		}
		t.row(u.ShardID, strconv.FormatFloat(100*u.Utilization, 'f', 0, 64)+"%", strconv.FormatFloat(u.BytesPerSecond/1024, 'f', 1, 64),
			strconv.FormatFloat(u.RecordsPerSecond, 'f', 1, 64), strconv.FormatFloat(u.ThrottledPerSecond, 'f', 1, 64), metrics, strconv.Itoa(u.SampleSize))
	}
	return t.flush()
}
