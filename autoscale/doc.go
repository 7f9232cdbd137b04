// Package autoscale splits and merges the shards of a Kinesis data stream
// after its write traffic: Kinesis has no automatic resharding of
// provisioned streams, so this package is the loop that does it.
//
// Per open shard it reads the accepted bytes and records per second and the
// writes refused for throughput over the last minutes (CloudWatch's
// shard-level IncomingBytes, IncomingRecords and
// WriteProvisionedThroughputExceeded, through GetMetricData), and a Planner
// decides:
//
//   - split the hottest shard above the target utilisation (default 70 % of
//     1 MiB/s or 1,000 records/s, refused writes counted as demand) at the
//     hash key that halves its observed traffic, found from a sample of its
//     recent records' hash keys: a hot key range becomes two equally loaded
//     children, where a split at the midpoint of the range can leave all the
//     load on one side. Without a usable sample, at the midpoint.
//   - merge the coldest pair of adjacent shards that both stayed below the
//     low-water mark (default 20 %) for MergeAfter, when their sum stays
//     below the target.
//
// It respects Kinesis's rules and its own: one resharding operation at a
// time (it acts only on an ACTIVE stream and waits for ACTIVE after each
// action), minimum and maximum shard counts, a cool-down between actions,
// and it never acts on a shard whose metrics are incomplete.
//
// Scaler runs the loop: Once makes one decision (and acts on it unless
// DryRun), Run repeats it every Interval until its context ends. Every
// decision is logged with its inputs. Metrics (Config.Metrics):
//
//	kinesis_autoscale_decisions_total{action}   counter; action: none, split, merge
//	kinesis_autoscale_actions_total{action}     counter, resharding operations started
//	kinesis_autoscale_errors_total              counter, evaluations that failed
//	kinesis_autoscale_shard_utilization{shard}  gauge, share of the write limit at the last evaluation
//
// Config.Leases adds a second source: the read rate a kcl application
// measured per lease (throughputKBps), used for a shard whose CloudWatch
// metrics are incomplete while its lease is held.
//
// Shard-level metrics must be enabled on the stream on AWS
// (EnableEnhancedMonitoring with IncomingBytes, IncomingRecords and
// WriteProvisionedThroughputExceeded); a shard without them has incomplete
// metrics and is left alone.
package autoscale
