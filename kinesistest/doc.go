// Package kinesistest is an in-memory Amazon Kinesis data stream for the
// unit tests of code that writes to or reads from Kinesis: producers,
// consumers, record processors, operator tools.
//
// New returns a *Stream whose methods have the signatures of the AWS SDK
// for Go v2 Kinesis client (PutRecords, PutRecord, ListShards,
// GetShardIterator, GetRecords, SplitShard, MergeShards,
// DescribeStreamSummary), so it stands in wherever code takes an interface
// of those calls, such as kpl.Config.Kinesis or kcl.Config.Kinesis:
//
//	s, err := kinesistest.New(kinesistest.Config{StreamName: "events", Shards: 2})
//
// The stream behaves as the Kinesis API reference describes: records are
// routed by the MD5 of their partition key or by their explicit hash key,
// get increasing 56-digit sequence numbers, and are stored as sent (KPL
// aggregated records stay aggregated); shards split and merge with the
// lineage Kinesis reports (ParentShardId, AdjacentParentShardId, the
// ChildShards of GetRecords at a closed shard's end); ListShards honours
// every ShardFilter type and paginates; iterators expire after five
// minutes; closed shards age out after the retention period. Errors are
// the SDK's typed errors (errors.As with *types.ResourceNotFoundException
// and the like works) wrapped as the SDK wraps them, with the codes AWS
// sends. Time is read from Config.Now, so tests can run on a fake clock or
// in a testing/synctest bubble.
//
// Tests steer the stream and look inside it: Put and PutTo write records
// without an API call, Split and Merge reshard, Expire ages a closed shard
// out, Synthetic makes a shard of generated records for benchmarks;
// Config.Fault fails or delays any call, Config.EntryFault fails single
// PutRecords entries, Hold blocks calls until released; Calls, Records,
// UserRecords and the other inspection methods report what the code under
// test did.
//
// The stream is for tests of logic. It does not model throughput limits,
// the latency of resharding, enhanced fan-out or encryption. Where the
// behaviour of AWS itself is in question, the integration tests against
// the emulators (behind the proxy that models AWS's limits) are the
// reference, not this package.
package kinesistest
