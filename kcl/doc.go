// Package kcl consumes a Kinesis data stream: the Go counterpart of the
// Java Kinesis Client Library (KCL 2.x), sharing its DynamoDB lease table
// format.
//
// A Worker (kcl.New, then Run) shares the stream's shards with the other
// workers of the same application through the lease table (package lease):
// it takes unowned and expired leases, balances with the others, and runs
// one goroutine per shard it holds. That goroutine reads the shard with
// GetRecords, takes KPL aggregated records apart (package kpl/aggregation),
// and hands batches to the application's RecordProcessor, which
// checkpoints its progress (package checkpoint) in the lease.
//
// With Config.Retrieval.Mode RetrievalFanOut the shards are read with
// enhanced fan-out instead: the worker registers the stream consumer
// Retrieval.ConsumerName (default App) unless it exists, waits until it is
// ACTIVE, and each shard's goroutine subscribes (SubscribeToShard) from
// its checkpoint, renews the subscription before the service ends it at 5
// minutes, and resubscribes after errors with backoff from the last
// continuation sequence number. The guarantees below hold in both modes.
// Memory per shard is PrefetchBytes plus the subscription's HTTP/2
// receive window (4 MiB by default in Go's HTTP/2 client;
// http.Transport's HTTP2.MaxReceiveBufferPerStream lowers it): events
// beyond are left unread, and HTTP/2 flow control holds them at the
// service. The Kinesis client must speak HTTP/2 (over TLS against AWS, as
// *kinesis.Client does).
//
// Guarantees:
//
//   - Every record is delivered at least once (from the initial position on).
//     A LATEST start is fixed when the application first sees the shard
//     (the lease's creation, less Config.ClockSkewMargin), not at each
//     take: a lease moved before its first record skips nothing.
//     A record is delivered again only when its batch failed and is retried,
//     or when processing of its shard moves to another worker without a
//     hand-over (fail-over after a crash, a restart): then the records
//     after the shard's last checkpoint are delivered again. A move to
//     balance the load is a hand-over: the holder finishes its batch,
//     checkpoints in ShutdownRequested and hands the lease over, so it
//     repeats nothing the processor checkpointed.
//   - Records of a shard arrive in order, and for each partition key the
//     records of a parent shard are processed before those of its children
//     (a child starts once every parent is checkpointed at SHARD_END; see
//     "Shard lineage" in docs/design.md).
//   - A failing ProcessRecords is never skipped silently: see
//     Config.OnProcessError.
//   - Checkpoints are fenced by the lease: once another worker holds it,
//     they fail with lease.ErrLeaseLost.
//
// The common case needs a function only:
//
//	w, err := kcl.New(kcl.Config{
//		Stream: "events", App: "billing",
//		Processor: kcl.ProcessorFunc(func(ctx context.Context, b *kcl.Batch) error {
//			for _, r := range b.Records {
//				// r.Data, r.PartitionKey, r.SequenceNumber, r.SubSequenceNumber
//			}
//			return b.Checkpoint(ctx)
//		}),
//	})
//	err = w.Run(ctx) // until ctx ends; graceful hand-off on the way out
//
// The names are those of packages kpl and lease: Config.Stream is the
// stream's name or ARN; Config.Kinesis and Config.DynamoDB are the clients
// (built from the standard AWS config chain when nil), and KinesisAPI and
// DynamoDBAPI the interfaces naming the calls the worker makes with them;
// start positions are checkpoint.Position values (checkpoint.TrimHorizon,
// Latest, AtTimestamp, and ShardEnd for a finished shard); a sub-sequence
// number, the place of a user record inside a KPL aggregated record, is a
// uint64.
//
// Checkpoints: Batch.Checkpoint(ctx), inside ProcessRecords, records the
// batch at hand as processed. Checkpointer.CheckpointProcessed(ctx) records
// the batches ProcessRecords has already returned nil for, and not the one
// at hand: it is the call for ShutdownRequested and ShardEnded, and for a
// processor that checkpoints every n-th batch. Checkpointer.CheckpointAt
// records up to a given record. Progress is kept across restarts only as
// far as it was checkpointed.
//
// Stopping: cancelling Run's context (or calling Shutdown) is a graceful
// shutdown: the worker takes no more leases, lets each shard finish its
// batch, calls ShutdownRequested so that the processor can checkpoint, and
// releases the leases in the table so that other workers take them at
// their next taker pass. With Config.AbortOnCancel, cancelling stops at
// once and leaves the leases to expire after Lease.FailoverTime, as a crash
// would. A processor that ignores its cancelled context does not hold the
// worker (or its leases) hostage: once ShutdownTimeout has passed (or at
// once with AbortOnCancel) and the shards had AbortGrace more to return,
// the worker stops renewing, releases the leases of a graceful shutdown,
// and Run returns an error wrapping ErrProcessorStuck that names the shards
// (their goroutines are left behind). Run also returns, with an error
// wrapping Kinesis's ResourceNotFoundException, when the stream is
// deleted.
//
// Panics: a processor method that panics does not crash the process. The
// panic is recovered, logged with its stack, counted, and handled as an
// error of that method (wrapping ErrProcessorPanic) under
// Config.OnProcessError: retried, skipped or stopping the shard.
//
// Metrics (Config.Metrics), next to the lease layer's kinesis_lease_*:
//
//	kinesis_kcl_millis_behind_latest{shard}          gauge
//	kinesis_kcl_records_processed_total              counter
//	kinesis_kcl_bytes_processed_total                counter
//	kinesis_kcl_process_duration_seconds             histogram, per ProcessRecords call
//	kinesis_kcl_process_errors_total                 counter, processor calls that failed
//	kinesis_kcl_processor_panics_total               counter, processor calls that panicked (counted as failed too)
//	kinesis_kcl_compressed_records_undecoded_total   counter, compressed containers delivered as they are (corrupt, or expanding beyond the bounds)
//	kinesis_kcl_records_skipped_total                counter, by RetryThenSkip
//	kinesis_kcl_leases_held                          gauge
//	kinesis_kcl_get_records_errors_total{kind}       counter, failed GetRecords and GetShardIterator calls; kind: AWS error code, "http_STATUS", "timeout", "network"
//	kinesis_kcl_records_outside_shard_range_total    counter, aggregated user records routed to another shard's range
//	kinesis_kcl_shards_ended_total                   counter
//	kinesis_kcl_shards_expired_total                 counter, closed shards aged out of retention before read to their end (ended so that their children start)
//	kinesis_kcl_leases_lost_total                    counter
//	kinesis_kcl_checkpoint_errors_total              counter, failed writes of the worker itself to a lease it holds (SHARD_END, child shard IDs)
//	kinesis_kcl_child_lease_errors_total             counter, failed creations of a closed shard's child leases
//	kinesis_kcl_subscriptions_total{reason}          counter, fan-out subscriptions opened; reason: started, renewed, resubscribed
//	kinesis_kcl_subscribe_errors_total{kind}         counter, failed SubscribeToShard calls and subscriptions ended by an error
package kcl
