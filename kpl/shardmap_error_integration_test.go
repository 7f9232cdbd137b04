package kpl_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/kpl"
)

// TestIntegrationMissingStreamFailsRecords: records put to a stream that
// does not exist fail with ResourceNotFoundException promptly.
func TestIntegrationMissingStreamFailsRecords(t *testing.T) {
	client := testenv.KinesisClient(t)
	p := newProducer(t, client, testenv.UniqueName(t), kpl.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := p.PutSync(ctx, kpl.Record{PartitionKey: "k", Data: []byte("d")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Fatalf("PutSync to a missing stream: err = %v, want ResourceNotFoundException", err)
	}
}
