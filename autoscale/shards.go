package autoscale

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// openShards lists the stream's open shards.
func (s *Scaler) openShards(ctx context.Context) ([]kintypes.Shard, error) {
	var open []kintypes.Shard
	in := &kinesis.ListShardsInput{StreamName: s.stream.Name(), StreamARN: s.stream.ARN()}
	for {
		out, err := s.cfg.Kinesis.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("autoscale: list shards of %s: %w", s.stream, err)
		}
		for _, sh := range out.Shards {
			if sh.SequenceNumberRange == nil || sh.SequenceNumberRange.EndingSequenceNumber == nil {
				open = append(open, sh)
			}
		}
		if out.NextToken == nil {
			return open, nil
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
}

// The shard-level metrics read, and the letter of their query IDs.
var shardMetrics = []struct{ id, name string }{
	{"b", "IncomingBytes"}, {"r", "IncomingRecords"}, {"t", "WriteProvisionedThroughputExceeded"},
}

// queriesPerCall is how many shards' metrics one GetMetricData call asks
// for: CloudWatch takes at most 500 queries per call.
const queriesPerCall = 500 / 3

// shardLoads reads each open shard's write metrics over the window that
// ends at the last whole period before now.
func (s *Scaler) shardLoads(ctx context.Context, shards []kintypes.Shard, now time.Time) ([]ShardLoad, error) {
	period := int64(s.cfg.Period / time.Second)
	end := time.Unix(now.Unix()/period*period, 0)
	start := end.Add(-s.cfg.Window)
	periods := int(s.cfg.Window / s.cfg.Period)
	loads := make([]ShardLoad, len(shards))
	for i, sh := range shards {
		loads[i] = ShardLoad{ShardID: aws.ToString(sh.ShardId)}
		if sh.HashKeyRange != nil {
			loads[i].StartingHashKey = aws.ToString(sh.HashKeyRange.StartingHashKey)
			loads[i].EndingHashKey = aws.ToString(sh.HashKeyRange.EndingHashKey)
		}
	}
	for from := 0; from < len(shards); from += queriesPerCall {
		batch := loads[from:min(from+queriesPerCall, len(loads))]
		var queries []cwtypes.MetricDataQuery
		for i, l := range batch {
			for _, m := range shardMetrics {
				queries = append(queries, cwtypes.MetricDataQuery{
					Id: aws.String(fmt.Sprintf("%s%d", m.id, i)),
					MetricStat: &cwtypes.MetricStat{Period: aws.Int32(int32(period)), Stat: aws.String("Sum"), Metric: &cwtypes.Metric{
						Namespace: aws.String("AWS/Kinesis"), MetricName: aws.String(m.name),
						Dimensions: []cwtypes.Dimension{
							{Name: aws.String("StreamName"), Value: aws.String(s.stream.ShortName())},
							{Name: aws.String("ShardId"), Value: aws.String(l.ShardID)},
						},
					}},
				})
			}
		}
		points := map[string]map[int64]float64{} // query ID -> period start -> sum
		in := &cloudwatch.GetMetricDataInput{StartTime: aws.Time(start), EndTime: aws.Time(end), MetricDataQueries: queries}
		for {
			out, err := s.cfg.CloudWatch.GetMetricData(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("autoscale: shard metrics of %s: %w", s.stream, err)
			}
			for _, r := range out.MetricDataResults {
				id := aws.ToString(r.Id)
				if points[id] == nil {
					points[id] = map[int64]float64{}
				}
				for j, ts := range r.Timestamps {
					if j < len(r.Values) && !ts.Before(start) && ts.Before(end) {
						points[id][ts.Unix()] = r.Values[j]
					}
				}
			}
			if out.NextToken == nil {
				break
			}
			in.NextToken = out.NextToken
		}
		seconds := s.cfg.Window.Seconds()
		for i := range batch {
			l := &batch[i]
			b, r, t := points[fmt.Sprintf("b%d", i)], points[fmt.Sprintf("r%d", i)], points[fmt.Sprintf("t%d", i)]
			// Throttled writes have no datapoint where none were refused;
			// accepted bytes and records must cover every period.
			l.Complete, l.Source = len(b) == periods && len(r) == periods, SourceCloudWatch
			l.BytesPerSecond, l.RecordsPerSecond, l.ThrottledPerSecond = total(b)/seconds, total(r)/seconds, total(t)/seconds
		}
	}
	return loads, nil
}

func total(m map[int64]float64) float64 {
	var sum float64
	for _, v := range m {
		sum += v
	}
	return sum
}

// sample reads up to SampleRecords recent user records of the shard and
// returns their hash keys: a user record's explicit hash key if it has one,
// else the MD5 of its partition key. A plain record written with an
// explicit hash key cannot be placed (GetRecords does not return the key):
// its partition key's hash usually falls outside the shard, and such
// records are left out.
func (s *Scaler) sample(ctx context.Context, l ShardLoad, now time.Time) ([]string, error) {
	rng, err := hashkey.ParseRange(l.StartingHashKey, l.EndingHashKey)
	if err != nil {
		return nil, err
	}
	it, err := s.cfg.Kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: s.stream.Name(), StreamARN: s.stream.ARN(),
		ShardId: aws.String(l.ShardID), ShardIteratorType: kintypes.ShardIteratorTypeAtTimestamp, Timestamp: aws.Time(now.Add(-s.cfg.SampleWindow))})
	if err != nil {
		return nil, fmt.Errorf("shard iterator: %w", err)
	}
	var keys []string
	iter := it.ShardIterator
	for calls, throttled := 0, 0; iter != nil && len(keys) < s.cfg.SampleRecords && calls < maxSampleCalls; {
		out, err := s.cfg.Kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(min(s.cfg.SampleRecords, 10000)))})
		if awserr.IsThrottling(err) && throttled < 5 {
			throttled++
			if err := backoff.Sleep(ctx, sampleBackoff.Delay(throttled)); err != nil {
				return keys, err
			}
			continue
		}
		if err != nil {
			return keys, fmt.Errorf("get records: %w", err)
		}
		calls++
		for _, r := range out.Records {
			keys = appendKeys(keys, r, rng)
		}
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			break
		}
		iter = out.NextShardIterator
		if err := backoff.Sleep(ctx, sampleReadInterval); err != nil {
			return keys, err
		}
	}
	if len(keys) > s.cfg.SampleRecords {
		keys = keys[:s.cfg.SampleRecords]
	}
	return keys, nil
}

// Pacing of the sample's reads: the shard's consumers share its 5
// GetRecords calls per second.
const (
	maxSampleCalls     = 10
	sampleReadInterval = 250 * time.Millisecond
)

var sampleBackoff = backoff.Policy{Base: 500 * time.Millisecond, Max: 5 * time.Second}

// appendKeys appends the hash keys of r's user records that lie in rng.
func appendKeys(keys []string, r kintypes.Record, rng hashkey.Range) []string {
	users, ok := aggregation.Decode(r.Data)
	if !ok {
		users = []aggregation.UserRecord{{PartitionKey: aws.ToString(r.PartitionKey)}}
	}
	for _, u := range users {
		k := hashkey.FromPartitionKey(u.PartitionKey)
		if u.ExplicitHashKey != "" {
			ek, err := hashkey.Parse(u.ExplicitHashKey)
			if err != nil {
				continue
			}
			k = ek
		}
		if rng.Contains(k) {
			keys = append(keys, k.String())
		}
	}
	return keys
}
