package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/integration/testenv"
)

func TestKinesisPutAndGetRecords(t *testing.T) {
	client, stream := testenv.NewStream(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	const n = 20
	entries := make([]kintypes.PutRecordsRequestEntry, n)
	for i := range entries {
		entries[i] = kintypes.PutRecordsRequestEntry{
			PartitionKey: aws.String(fmt.Sprintf("key-%d", i)),
			Data:         []byte(fmt.Sprintf("record-%d", i)),
		}
	}
	out, err := client.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(stream), Records: entries})
	if err != nil {
		t.Fatalf("PutRecords: %v", err)
	}
	if got := aws.ToInt32(out.FailedRecordCount); got != 0 {
		t.Fatalf("FailedRecordCount = %d", got)
	}

	// Read every shard from TRIM_HORIZON until all n records are back.
	shards, err := client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatalf("ListShards: %v", err)
	}
	if len(shards.Shards) != 2 {
		t.Fatalf("got %d shards, want 2", len(shards.Shards))
	}
	got := map[string]bool{}
	for _, sh := range shards.Shards {
		it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
			StreamName:        aws.String(stream),
			ShardId:           sh.ShardId,
			ShardIteratorType: kintypes.ShardIteratorTypeTrimHorizon,
		})
		if err != nil {
			t.Fatalf("GetShardIterator: %v", err)
		}
		recs, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
		if err != nil {
			t.Fatalf("GetRecords: %v", err)
		}
		for _, r := range recs.Records {
			got[string(r.Data)] = true
		}
	}
	for i := 0; i < n; i++ {
		if !got[fmt.Sprintf("record-%d", i)] {
			t.Errorf("record-%d not read back", i)
		}
	}
}

func TestDynamoDBConditionalPut(t *testing.T) {
	client, table := testenv.NewLeaseTable(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	put := func() error {
		_, err := client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: aws.String(table),
			Item: map[string]ddbtypes.AttributeValue{
				"leaseKey":     &ddbtypes.AttributeValueMemberS{Value: "shardId-000000000000"},
				"leaseCounter": &ddbtypes.AttributeValueMemberN{Value: "0"},
			},
			ConditionExpression: aws.String("attribute_not_exists(leaseKey)"),
		})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("first conditional PutItem: %v", err)
	}
	err := put()
	var ccf *ddbtypes.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("second conditional PutItem: got %v, want ConditionalCheckFailedException", err)
	}
}

func TestNewTableNameCleanupWithoutTable(t *testing.T) {
	// The cleanup of a name whose table was never created must not wait or fail.
	_, name := testenv.NewTableName(t)
	if name == "" {
		t.Fatal("empty table name")
	}
}
