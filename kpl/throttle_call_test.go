package kpl

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// A whole PutRecords call refused for throttling slows the shard's rate as
// throttled entries do, so the producer does not keep sending at RateLimit
// into a stream that pushes back.
func TestWholeCallThrottlingCutsRate(t *testing.T) {
	f := newFake(1)
	f.callFault = func(call int) error {
		if call < 3 {
			return &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}
		}
		return nil
	}
	p := newProducer(t, f, Config{MinBackoff: 1, MaxBackoff: 2})
	r, err := p.PutSync(context.Background(), Record{PartitionKey: "k", Data: []byte("d")})
	if err != nil || r.Attempts != 4 {
		t.Fatalf("PutSync = %+v, %v; want success after 4 attempts", r, err)
	}
	s := p.shards.Load().shards[0]
	s.mu.Lock()
	factor := s.rateFactor
	s.mu.Unlock()
	if factor >= 1 {
		t.Fatalf("rate factor %v after throttled calls, want below 1", factor)
	}
}
