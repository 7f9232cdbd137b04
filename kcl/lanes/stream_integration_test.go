package lanes_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kcl/lanes"
	"github.com/kinesisgo/kinesis/kpl"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// StreamDestination puts one envelope per failed record into a stream
// through kpl, keyed by the record's partition key; a record too large to
// go with its envelope goes without its data.
func TestIntegrationStreamDestination(t *testing.T) {
	e := newEnv(t, 1)
	failures := testenv.CreateStream(t, e.kinesis, 1)
	p, err := kpl.New(kpl.Config{Stream: failures, Kinesis: e.kinesis})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	defer p.Close(ctx)
	f := failure(3, 10)
	f.Records[2].Data = bytes.Repeat([]byte("x"), 900<<10) // 1.2 MB in base64
	d := &lanes.StreamDestination{Producer: p}
	if err := d.Send(ctx, f); err != nil {
		t.Fatal(err)
	}

	it, err := e.kinesis.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(failures),
		ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	var got []aggregation.UserRecord
	iter := it.ShardIterator
	wait.For(t, 30*time.Second, "3 records in the destination stream", func() bool {
		out, err := e.kinesis.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			var throttled *types.ProvisionedThroughputExceededException
			if !errors.As(err, &throttled) {
				t.Fatal(err)
			}
			return false
		}
		iter = out.NextShardIterator
		for _, r := range out.Records {
			if subs, ok := aggregation.Decode(r.Data); ok {
				got = append(got, subs...)
			} else {
				got = append(got, aggregation.UserRecord{PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data})
			}
		}
		return len(got) >= 3
	})
	if len(got) != 3 {
		t.Fatalf("%d records in the destination stream, want 3", len(got))
	}
	// The producer may write them in any order: matched by sequence number.
	bySeq := map[string]int{}
	for i, r := range f.Records {
		bySeq[r.SequenceNumber] = i
	}
	for _, ur := range got {
		var env lanes.Envelope
		if err := json.Unmarshal(ur.Data, &env); err != nil {
			t.Fatalf("record of key %s: %v", ur.PartitionKey, err)
		}
		i, ok := bySeq[env.Record.SequenceNumber]
		if !ok {
			t.Fatalf("envelope of an unknown record %s", env.Record.SequenceNumber)
		}
		delete(bySeq, env.Record.SequenceNumber)
		r := f.Records[i]
		if ur.PartitionKey != r.PartitionKey || env.Record.SequenceNumber != r.SequenceNumber || env.ShardID != f.ShardID ||
			env.Attempts != f.Attempts || env.Reason != f.Reason || env.Record.DataLength != len(r.Data) {
			t.Errorf("record %d (key %s): envelope %+v, want the metadata of %s", i, ur.PartitionKey, env, r.SequenceNumber)
		}
		if big := i == 2; env.Record.DataOmitted != big || (!big && !bytes.Equal(env.Record.Data, r.Data)) || (big && env.Record.Data != nil) {
			t.Errorf("record %d: data omitted %v (%d bytes), want omitted only for the 900 KiB record", i, env.Record.DataOmitted, len(env.Record.Data))
		}
	}
}
