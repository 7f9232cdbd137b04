package proxy_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
)

// The proxy answers aws-sdk-go-v2's CloudWatch client with the shard-level
// write metrics of what its limits admitted and refused, per period.
func TestCloudWatchGetMetricData(t *testing.T) {
	t.Parallel()
	t0 := time.Now().Truncate(time.Minute).Add(-time.Hour + 30*time.Second) // 30 s into a minute
	clk := testenv.NewClock(t0)
	px := proxy.StartForTest(t, proxy.Config{Sink: true, Now: clk.Now, Limits: proxy.Limits{WriteRecordsPerSecond: 10}})
	_, stream := testenv.NewStream(t, 1)
	pk := testenv.KinesisClientAt(t, px.URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// At t0: 15 records of 100 bytes with partition keys of 7 bytes; the
	// clock stands still, so 10 are admitted and 5 refused.
	out, err := pk.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries("cw", 1000, 15, 100)})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToInt32(out.FailedRecordCount); n != 5 {
		t.Fatalf("%d entries throttled, want 5", n)
	}
	clk.Set(t0.Add(2 * time.Second))
	if _, err := pk.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries("cw", 2000, 3, 100)}); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(3500 * time.Millisecond))

	cw := cloudwatch.NewFromConfig(testenv.AWSConfig(t, px.URL()), func(o *cloudwatch.Options) { o.BaseEndpoint = aws.String(px.URL()) })
	query := func(id, metric string, period int32) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(id), MetricStat: &cwtypes.MetricStat{Period: aws.Int32(period), Stat: aws.String("Sum"),
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/Kinesis"), MetricName: aws.String(metric), Dimensions: []cwtypes.Dimension{
				{Name: aws.String("StreamName"), Value: aws.String(stream)}, {Name: aws.String("ShardId"), Value: aws.String("shardId-000000000000")}}}}}
	}
	res, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0.Add(-10 * time.Second)), EndTime: aws.Time(t0.Add(10 * time.Second)),
		MetricDataQueries: []cwtypes.MetricDataQuery{query("bytes", "IncomingBytes", 1), query("records", "IncomingRecords", 1),
			query("throttled", "WriteProvisionedThroughputExceeded", 1), query("minute", "IncomingRecords", 60)},
	})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]cwtypes.MetricDataResult{}
	for _, r := range res.MetricDataResults {
		byID[aws.ToString(r.Id)] = r
	}
	// Seconds t0, t0+1, t0+2 have ended (t0+3 is in progress), newest first.
	wantTimes := []time.Time{t0.Add(2 * time.Second), t0.Add(time.Second), t0}
	for id, want := range map[string][]float64{"bytes": {3 * 107, 0, 10 * 107}, "records": {3, 0, 10}, "throttled": {0, 0, 5}} {
		r := byID[id]
		if len(r.Values) != len(want) || len(r.Timestamps) != len(wantTimes) {
			t.Errorf("%s: %v at %v, want %v at %v", id, r.Values, r.Timestamps, want, wantTimes)
			continue
		}
		for i := range want {
			if r.Values[i] != want[i] || !r.Timestamps[i].Equal(wantTimes[i]) {
				t.Errorf("%s: %v at %v, want %v at %v", id, r.Values, r.Timestamps, want, wantTimes)
				break
			}
		}
		if r.StatusCode != cwtypes.StatusCodeComplete {
			t.Errorf("%s: status %s", id, r.StatusCode)
		}
	}
	if r := byID["minute"]; len(r.Values) != 0 {
		t.Errorf("the minute in progress has a datapoint: %v at %v", r.Values, r.Timestamps)
	}
	clk.Set(t0.Add(time.Minute))
	res, err = cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(t0.Add(-time.Minute)), EndTime: aws.Time(t0.Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{query("minute", "IncomingRecords", 60)}, ScanBy: cwtypes.ScanByTimestampAscending,
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := res.MetricDataResults[0]; len(r.Values) != 1 || r.Values[0] != 13 || !r.Timestamps[0].Equal(t0.Truncate(time.Minute)) {
		t.Errorf("minute: %v at %v, want 13 at %v", r.Values, r.Timestamps, t0.Truncate(time.Minute))
	}

	// Unknown shards have no datapoints; what the proxy does not serve is
	// an error.
	q := query("other", "IncomingRecords", 1)
	q.MetricStat.Metric.Dimensions[1].Value = aws.String("shardId-000000000009")
	res, err = cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(5 * time.Second)),
		MetricDataQueries: []cwtypes.MetricDataQuery{q}})
	if err != nil || len(res.MetricDataResults) != 1 || len(res.MetricDataResults[0].Values) != 0 {
		t.Errorf("unknown shard: %+v, %v", res, err)
	}
	q = query("avg", "IncomingRecords", 1)
	q.MetricStat.Stat = aws.String("Average")
	_, err = cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(t0), EndTime: aws.Time(t0.Add(5 * time.Second)),
		MetricDataQueries: []cwtypes.MetricDataQuery{q}})
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode() != "ValidationError" {
		t.Errorf("Average: %v, want a ValidationError", err)
	}
	if n := px.Stats().Calls["CloudWatch.GetMetricData"]; n != 4 {
		t.Errorf("%d GetMetricData calls counted, want 4", n)
	}
}
