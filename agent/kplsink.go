package agent

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/kpl"
)

// partitionKeyRoom is what a record's data leaves for its partition key
// within the producer's record size (Kinesis counts both).
const partitionKeyRoom = 256

// ProducerConfig returns the kpl configuration for a flow: the stream,
// aggregation as configured (off by default, like AWS's agent), records
// buffered up to maxBufferAgeMillis, requests of at most
// maxBufferSizeRecords records and maxBufferSizeBytes bytes, and a buffer
// (MaxBufferedBytes) of half DefaultMaxPendingBytes. A record the agent has
// put is held twice until it is acknowledged: by the agent, to put it again
// if the producer gives up on it, and in the producer's container; half the
// agent's bound for the producer keeps both copies within it. (The
// producer's own default, 64 MiB lowered to 15 MiB a shard, is never filled
// by a flow, but sizes the request bodies it keeps in flight, which adds to
// the memory of a catch-up after a throttle.) A caller running an agent with
// another Config.MaxPendingBytes sets MaxBufferedBytes to half of it. client, logger
// and reg may be nil (AWS config chain, no logs, no metrics); the metrics
// carry a flow label so that several flows can share a registry.
func ProducerConfig(fl config.Flow, client kpl.KinesisAPI, logger *zap.Logger, reg prometheus.Registerer) kpl.Config {
	maxRecord := fl.MaxRecordSizeBytes + partitionKeyRoom
	if reg != nil {
		reg = prometheus.WrapRegistererWith(prometheus.Labels{"flow": fl.ID()}, reg)
	}
	return kpl.Config{
		Stream:                fl.Stream,
		Kinesis:               client,
		DisableAggregation:    !fl.Aggregation,
		Compression:           fl.Compression,
		CollectionMaxCount:    fl.MaxBufferSizeRecords,
		CollectionMaxSize:     min(max(fl.MaxBufferSizeBytes, maxRecord), kpl.MaxRequestSize),
		RecordMaxBufferedTime: fl.MaxBufferAge,
		MaxRecordSize:         maxRecord,
		MaxBufferedBytes:      DefaultMaxPendingBytes / 2,
		Logger:                logger,
		Metrics:               reg,
	}
}

// KPLSink adapts a kpl.Producer to a Sink. Close closes the producer.
func KPLSink(p *kpl.Producer) Sink { return kplSink{p} }

type kplSink struct{ p *kpl.Producer }

func (s kplSink) Put(ctx context.Context, r Record, done func(error)) error {
	err := s.p.Put(ctx, kpl.Record{PartitionKey: r.PartitionKey, Data: r.Data}, func(res kpl.Result) { done(res.Err) })
	if errors.Is(err, kpl.ErrInvalidRecord) {
		return fmt.Errorf("%w: %w", ErrRecordRejected, err)
	}
	return err
}

func (s kplSink) Flush(ctx context.Context) error { return s.p.Flush(ctx) }
func (s kplSink) Close(ctx context.Context) error { return s.p.Close(ctx) }
