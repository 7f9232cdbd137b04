package kpl

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Records put while the shard map cannot be loaded because of an error that
// retrying will not fix (no such stream, access denied) fail at once with
// that error, not RecordTTL later with a bare ErrRecordExpired.
func TestShardMapNonRetryableErrorFailsRecords(t *testing.T) {
	f := newFake(1)
	f.listFault = func(int) error { return &types.ResourceNotFoundException{Message: aws.String("no stream")} }
	p := newProducer(t, f, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := p.PutSync(ctx, Record{PartitionKey: "k", Data: []byte("d")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("PutSync: err = %v, want the ResourceNotFoundException", err)
	}
}

// Records that expire while the shard map cannot be loaded say why.
func TestShardMapRetryableErrorExplainsExpiry(t *testing.T) {
	f := newFake(1)
	f.listFault = func(int) error { return serverError() }
	p := newProducer(t, f, Config{RecordTTL: 100 * time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	_, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
	var ae interface{ ErrorCode() string }
	if !errors.Is(err, ErrRecordExpired) || !errors.As(err, &ae) || ae.ErrorCode() != "InternalFailure" {
		t.Fatalf("PutSync: err = %v, want ErrRecordExpired wrapping the ListShards error", err)
	}
}
