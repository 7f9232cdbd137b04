// Package lanes gives a kcl.Worker the stream processing that AWS Lambda's
// Kinesis event source offers its functions: parallel lanes per shard with
// per-partition-key order, batching by count, bytes and time, retry and
// record-age limits, bisection of failing batches, partial batch results,
// and failure destinations.
//
// A Factory wraps a Handler into the per-shard kcl.RecordProcessor of a
// worker (kcl.Config.NewProcessor). Each shard's records are routed to
// Config.Parallelism lanes by partition key; each lane calls the Handler
// with its own batches, one at a time, so the records of a key are handled
// in the shard's order while the lanes run concurrently.
//
// The shard's checkpoint is a watermark: the position of the last record
// before which every record of every lane was handled, or stored by the
// Destination after the Handler failed for it more than Config.MaxRetries
// times or it grew older than Config.MaxRecordAge. A crash makes the next
// owner of the shard process again only records above the watermark (at
// most Config.MaxInFlight and a delivered batch), and no record is passed
// by the checkpoint before it was handled or stored: nothing is dropped
// silently. A graceful shutdown or a hand-over of the shard to another
// worker handles no record twice: the lanes finish the records up to the
// last one started, and the next owner reads the rest again.
//
// With the zero Config (but the Handler) a shard has one lane, each batch
// the worker delivers is one Handler call, and a failing call is retried
// until it succeeds, as with a plain kcl.RecordProcessor. Unlike one,
// ProcessRecords returns once the records are queued, so the next
// GetRecords overlaps the Handler.
//
// Built-in destinations: FileDestination (a local JSON-lines file, crash
// safe) and StreamDestination (another Kinesis stream, through kpl).
package lanes
