package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/kpl"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// noClient fails every call: these tests make none that succeed.
type noClient struct{}

func (noClient) PutRecords(context.Context, *kinesis.PutRecordsInput, ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	return nil, errors.New("no network in this test")
}
func (noClient) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return nil, errors.New("no network in this test")
}

func TestProducerConfigIsValidForAnyValidFlow(t *testing.T) {
	for _, mod := range []func(*config.Flow){
		func(*config.Flow) {},
		func(f *config.Flow) { f.MaxBufferSizeBytes = 1; f.MaxBufferSizeRecords = 1 },
		func(f *config.Flow) { f.MaxBufferSizeBytes = 5 << 20; f.MaxRecordSizeBytes = 5<<20 - 256 },
		func(f *config.Flow) {
			f.Aggregation = true
			f.Compression = aggregation.Zstd
			f.MaxBufferAge = 15 * time.Minute
		},
		func(f *config.Flow) { f.MaxRecordSizeBytes = 16 },
	} {
		fl := flowFor("/var/log/x.log")
		mod(&fl)
		pc := ProducerConfig(fl, noClient{}, nil, nil)
		if err := pc.Validate(); err != nil {
			t.Errorf("flow %+v: %v", fl, err)
		}
		if pc.DisableAggregation == fl.Aggregation || pc.Compression != fl.Compression || pc.Stream != fl.Stream ||
			pc.RecordMaxBufferedTime != fl.MaxBufferAge || pc.CollectionMaxCount != fl.MaxBufferSizeRecords ||
			pc.MaxRecordSize < fl.MaxRecordSizeBytes+256 || pc.MaxBufferedBytes != DefaultMaxPendingBytes/2 {
			t.Errorf("mapping %+v -> %+v", fl, pc)
		}
	}
}

func TestKPLSinkRejectsInvalidRecords(t *testing.T) {
	p, err := kpl.New(ProducerConfig(flowFor("/var/log/x.log"), noClient{}, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	s := KPLSink(p)
	err = s.Put(context.Background(), Record{PartitionKey: "", Data: []byte("x")}, func(error) { t.Error("callback for a refused record") })
	if !errors.Is(err, ErrRecordRejected) || !errors.Is(err, kpl.ErrInvalidRecord) {
		t.Fatalf("Put = %v, want ErrRecordRejected wrapping kpl.ErrInvalidRecord", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	failed := make(chan error, 1)
	if err := s.Put(ctx, Record{PartitionKey: "k", Data: []byte("x")}, func(err error) { failed <- err }); err != nil {
		t.Fatal(err)
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer ccancel()
	_ = s.Close(cctx) // the record cannot be written: Close fails it
	select {
	case err := <-failed:
		if err == nil {
			t.Fatal("record reported written")
		}
	case <-ctx.Done():
		t.Fatal("no callback after Close")
	}
}
