package lanes

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/kinesisgo/kinesis/kcl"
)

// Destination receives the records the lanes gave up on (Config.MaxRetries,
// Config.MaxRecordAge). Send is called by the lanes of every shard
// concurrently; it must be safe for concurrent use. It returns nil once
// the records are stored: only then does the shard's checkpoint move past
// them. An error is retried with backoff, so Send may see the same records
// again (delivery to a destination is at least once, as after a crash).
type Destination interface {
	Send(ctx context.Context, f *Failure) error
}

// Reason tells why records were given up on.
type Reason string

// Reasons for a Failure.
const (
	// RetriesExhausted: the Handler failed for the records more than
	// Config.MaxRetries times.
	RetriesExhausted Reason = "retries_exhausted"
	// RecordTooOld: the records were older than Config.MaxRecordAge.
	RecordTooOld Reason = "record_too_old"
)

// Failure is what a Destination receives: records of one lane given up on
// together, in the shard's order.
type Failure struct {
	// ShardID is the shard the records come from.
	ShardID string
	// Lane is the lane that handled them.
	Lane int
	// Records are the records, never empty.
	Records []kcl.Record
	// Reason is why they were given up on.
	Reason Reason
	// Attempts is how many Handler calls the records were part of (0 for
	// records too old to be handled at all).
	Attempts int
	// Err is the error of the last Handler call, nil when there was none.
	Err error
}

// First returns the first record of the failure.
func (f *Failure) First() kcl.Record { return f.Records[0] }

// Last returns the last record of the failure.
func (f *Failure) Last() kcl.Record { return f.Records[len(f.Records)-1] }

// Envelope is the JSON form in which the built-in destinations store each
// record of a Failure: one JSON object per record, with the failure's
// metadata. Data is the record's data, base64 encoded (as encoding/json
// encodes a []byte).
type Envelope struct {
	ShardID                string         `json:"shardId"`
	Lane                   int            `json:"lane"`
	Reason                 Reason         `json:"reason"`
	Attempts               int            `json:"attempts"`
	LastError              string         `json:"lastError,omitempty"`
	FirstSequenceNumber    string         `json:"firstSequenceNumber"`
	FirstSubSequenceNumber uint64         `json:"firstSubSequenceNumber"`
	LastSequenceNumber     string         `json:"lastSequenceNumber"`
	LastSubSequenceNumber  uint64         `json:"lastSubSequenceNumber"`
	Record                 EnvelopeRecord `json:"record"`
}

// EnvelopeRecord is the record inside an Envelope.
type EnvelopeRecord struct {
	SequenceNumber              string    `json:"sequenceNumber"`
	SubSequenceNumber           uint64    `json:"subSequenceNumber"`
	PartitionKey                string    `json:"partitionKey"`
	ExplicitHashKey             string    `json:"explicitHashKey,omitempty"`
	ApproximateArrivalTimestamp time.Time `json:"approximateArrivalTimestamp"`
	// Data is nil when DataOmitted is set.
	Data []byte `json:"data"`
	// DataOmitted is set when the data was left out because the envelope
	// would not fit in a Kinesis record (see StreamDestination).
	DataOmitted bool `json:"dataOmitted,omitempty"`
	// DataLength is the length of the record's data.
	DataLength int `json:"dataLength"`
}

// Envelopes returns the envelope of each record of f.
func (f *Failure) Envelopes() []Envelope {
	first, last := f.First(), f.Last()
	var lastErr string
	if f.Err != nil {
		lastErr = f.Err.Error()
	}
	out := make([]Envelope, len(f.Records))
	for i, r := range f.Records {
		out[i] = Envelope{
			ShardID: f.ShardID, Lane: f.Lane, Reason: f.Reason, Attempts: f.Attempts, LastError: lastErr,
			FirstSequenceNumber: first.SequenceNumber, FirstSubSequenceNumber: first.SubSequenceNumber,
			LastSequenceNumber: last.SequenceNumber, LastSubSequenceNumber: last.SubSequenceNumber,
			Record: EnvelopeRecord{
				SequenceNumber: r.SequenceNumber, SubSequenceNumber: r.SubSequenceNumber,
				PartitionKey: r.PartitionKey, ExplicitHashKey: r.ExplicitHashKey,
				ApproximateArrivalTimestamp: r.ApproximateArrivalTimestamp, Data: r.Data, DataLength: len(r.Data),
			},
		}
	}
	return out
}

// ID returns the record's position as "sequence/sub-sequence".
func (r EnvelopeRecord) ID() string {
	return r.SequenceNumber + "/" + strconv.FormatUint(r.SubSequenceNumber, 10)
}

// appendLine appends e as one JSON line.
func appendLine(dst []byte, e *Envelope) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return dst, err
	}
	dst = append(dst, b...)
	return append(dst, '\n'), nil
}
