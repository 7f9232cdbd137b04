package lanes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/kinesisgo/kinesis/kpl"
)

// Putter is the part of a kpl.Producer that StreamDestination uses.
type Putter interface {
	Put(ctx context.Context, rec kpl.Record, callback func(kpl.Result)) error
}

// StreamDestination puts failed records into a Kinesis stream through a
// kpl.Producer: one Kinesis user record per failed record, its data the
// record's Envelope as JSON, its partition key the failed record's (so
// the failure stream keeps each key's order). Send returns once every
// record is written.
//
// A record whose envelope would exceed MaxRecordSize goes without its data
// (EnvelopeRecord.DataOmitted, with DataLength), so that it still reaches
// the destination with its metadata.
type StreamDestination struct {
	// Producer writes the records; its Config.Stream is the destination
	// stream. Required. The caller closes it after the worker has stopped.
	Producer Putter
	// MaxRecordSize is the largest envelope put with the record's data.
	// Default kpl.DefaultMaxRecordSize (1 MiB, the Kinesis limit).
	MaxRecordSize int
}

// Send puts one envelope per record of f and waits for the results.
func (d *StreamDestination) Send(ctx context.Context, f *Failure) error {
	if d.Producer == nil {
		return errors.New("lanes: StreamDestination has no Producer")
	}
	limit := d.MaxRecordSize
	if limit <= 0 {
		limit = kpl.DefaultMaxRecordSize
	}
	envs := f.Envelopes()
	results := make(chan error, len(envs))
	for i := range envs {
		b, err := json.Marshal(&envs[i])
		if err != nil {
			return fmt.Errorf("lanes: encode failed record: %w", err)
		}
		if len(b) > limit {
			envs[i].Record.Data, envs[i].Record.DataOmitted = nil, true
			if b, err = json.Marshal(&envs[i]); err != nil {
				return fmt.Errorf("lanes: encode failed record: %w", err)
			}
		}
		rec := kpl.Record{PartitionKey: envs[i].Record.PartitionKey, Data: b}
		if err := d.Producer.Put(ctx, rec, func(r kpl.Result) { results <- r.Err }); err != nil {
			return fmt.Errorf("lanes: put failed record %s to the destination stream: %w", envs[i].Record.ID(), err)
		}
	}
	var errs []error
	for range envs {
		select {
		case err := <-results:
			if err != nil {
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("lanes: %d of %d failed records not written to the destination stream: %w", len(errs), len(envs), errors.Join(errs...))
	}
	return nil
}
