package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// TestSinkCounts sends plain and KPL aggregated records to a sink-mode proxy
// without limits: the stats count them exactly, user records deaggregated,
// and GET /stats serves the same figures.
func TestSinkCounts(t *testing.T) {
	p := proxy.StartForTest(t, proxy.Config{Sink: true, NoLimits: true})
	client := kinesisNoRetry(t, p)
	stream := testenv.CreateStream(t, client, 2)
	ctx := ctxT(t)

	var wantRecords, wantUser, wantBytes int64
	var batch []types.PutRecordsRequestEntry
	add := func(data []byte, users int64) {
		batch = append(batch, types.PutRecordsRequestEntry{Data: data, PartitionKey: aws.String(fmt.Sprint("pk", len(batch)))})
		wantRecords++
		wantUser += users
		wantBytes += int64(len(data))
	}
	for i := range 300 {
		add([]byte(fmt.Sprint("plain record ", i)), 1)
	}
	for n := 1; n <= 40; n++ { // containers of 1 to 40 user records
		var e aggregation.Encoder
		for j := range n {
			e.Add(aggregation.Record{PartitionKey: fmt.Sprint("user-", j), Data: []byte("payload")})
		}
		add(e.Encode(), int64(n))
	}
	compressed, err := func() ([]byte, error) {
		var e aggregation.Encoder
		for j := range 25 {
			e.Add(aggregation.Record{PartitionKey: fmt.Sprint("user-", j), Data: []byte("payload payload payload")})
		}
		return aggregation.Compress(nil, e.Encode(), aggregation.Zstd)
	}()
	if err != nil {
		t.Fatal(err)
	}
	add(compressed, 25)

	seqs := map[string]string{} // shard -> last sequence number
	for i := 0; i < len(batch); i += 100 {
		out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: batch[i:min(i+100, len(batch))]})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("%d entries failed", aws.ToInt32(out.FailedRecordCount))
		}
		for _, r := range out.Records {
			shard, seq := aws.ToString(r.ShardId), aws.ToString(r.SequenceNumber)
			if shard != "shardId-000000000000" && shard != "shardId-000000000001" {
				t.Fatalf("ShardId %q", shard)
			}
			if prev, ok := seqs[shard]; ok && seq <= prev {
				t.Fatalf("shard %s: sequence number %s after %s", shard, seq, prev)
			}
			seqs[shard] = seq
		}
	}
	single, err := client.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String(stream), PartitionKey: aws.String("one"), Data: []byte("single")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(single.SequenceNumber) <= seqs[aws.ToString(single.ShardId)] {
		t.Errorf("PutRecord sequence number %s not after %s", aws.ToString(single.SequenceNumber), seqs[aws.ToString(single.ShardId)])
	}
	wantRecords, wantUser, wantBytes = wantRecords+1, wantUser+1, wantBytes+int64(len("single"))

	s := p.Stats()
	if s.Records != wantRecords || s.UserRecords != wantUser || s.Bytes != wantBytes || s.PutRequests != 5 {
		t.Errorf("Stats %+v, want Records %d, UserRecords %d, Bytes %d, PutRequests 5", s, wantRecords, wantUser, wantBytes)
	}
	if s.Calls["Kinesis.PutRecords"] != 4 || s.Calls["Kinesis.PutRecord"] != 1 {
		t.Errorf("Stats.Calls %v, want 4 PutRecords and 1 PutRecord", s.Calls)
	}

	resp, err := http.Get(p.URL() + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var served proxy.Stats
	if err := json.NewDecoder(resp.Body).Decode(&served); err != nil {
		t.Fatal(err)
	}
	if served.Records != s.Records || served.UserRecords != s.UserRecords || served.Bytes != s.Bytes ||
		served.Calls["Kinesis.PutRecords"] != s.Calls["Kinesis.PutRecords"] {
		t.Errorf("GET /stats %+v, want %+v", served, s)
	}

	// Nothing reached the emulator.
	shards, err := testenv.KinesisClient(t).ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range shards.Shards {
		it, err := testenv.KinesisClient(t).GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		out, err := testenv.KinesisClient(t).GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Records) != 0 {
			t.Errorf("shard %s: %d records reached the emulator in sink mode", aws.ToString(sh.ShardId), len(out.Records))
		}
	}
}
