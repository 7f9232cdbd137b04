// Package proxy is the project's Kinesis and DynamoDB test instrument: an HTTP
// proxy on loopback that sits between a client and the local emulators
// (kinesis-mock and dynalite) and behaves like the real services under load
// and faults, which the emulators never do.
//
// One listener serves both services. Requests are routed on the X-Amz-Target
// header (Kinesis_20131202.<Op> or DynamoDB_20120810.<Op>), so the proxy's URL
// works as AWS_ENDPOINT_URL, or as both AWS_ENDPOINT_URL_KINESIS and
// AWS_ENDPOINT_URL_DYNAMODB, or as a client's BaseEndpoint.
//
// What it does on top of forwarding:
//
//   - Per-shard write limits as real Kinesis enforces them: 1 MiB/s and 1,000
//     records/s per shard, as token buckets holding at most one second of
//     credit. The shard of a record is found from its hash key and the
//     stream's shard hash ranges (ListShards against the emulator, cached,
//     refreshed after resharding). PutRecords entries over the limit fail with
//     ErrorCode ProvisionedThroughputExceededException and only the accepted
//     entries are forwarded; the results are mapped back to the caller's
//     entry order. PutRecord over the limit gets HTTP 400 with that error.
//   - Per-shard read limits: 5 GetRecords calls/s and 2 MiB/s per shard. A
//     GetRecords call that returns more than the byte credit leaves the shard
//     in debt, so the following calls are throttled until it is paid back.
//     The shard of a GetRecords call is known from its shard iterator, when
//     that came through the proxy (from GetShardIterator or an earlier
//     GetRecords); calls with other iterators are forwarded unlimited.
//   - Optionally (Config.ControlPlaneLimits), AWS's call rates of the
//     control-plane operations, such as DescribeStream at 10 calls/s, and of
//     GetShardIterator at 5 calls/s per shard.
//   - Faults, each with a probability and reproducible from Config.Seed (for a
//     given order of requests): per-entry InternalFailure in PutRecords,
//     whole-request HTTP 500 and 503, LimitExceededException on control-plane
//     calls, added latency, and connections closed mid-response after the
//     request took effect upstream. For DynamoDB:
//     ProvisionedThroughputExceededException, ThrottlingException, 500s,
//     503s, latency and closed connections. Faults can be limited to named
//     operations and changed while the proxy runs.
//   - Sink mode: PutRecord and PutRecords are answered by the proxy itself
//     (ShardId from the hash ranges, increasing sequence numbers per shard),
//     still under the write limits unless NoLimits is set, so that
//     benchmarks measure the client rather than the emulator. Everything else
//     is forwarded.
//   - Optionally (Config.ShardLifecycle), shard lifetimes as the Kinesis API
//     reference describes them, where kinesis-mock lists every shard for
//     ShardFilter AT_TRIM_HORIZON and never ages a shard out. The proxy answers
//     ListShards itself, from the emulator's full list and the creation and
//     closing time of each shard, which it records on Config.Now: a
//     stream's original shards date from its creation (CreateStream through
//     the proxy, else DescribeStreamSummary), a shard closes when the
//     SplitShard, MergeShards or UpdateShardCount call that closes it passed
//     through (else when the proxy first sees it closed), and a child is
//     created when its parents close. AT_TRIM_HORIZON, AT_LATEST,
//     AT_TIMESTAMP, FROM_TIMESTAMP, FROM_TRIM_HORIZON and AFTER_SHARD_ID,
//     ExclusiveStartShardId, MaxResults and NextToken follow AWS's rules. A
//     closed shard ages out once it closed Config.Retention ago (default
//     24h) or when Proxy.ExpireShard (or POST /expire-shard?stream=&shard=)
//     says so: no filter lists it, the trim horizon moves past it, and
//     GetShardIterator, GetRecords and SubscribeToShard for it answer
//     ResourceNotFoundException.
//   - Optionally (Config.Firehose), the Amazon Data Firehose calls of a log
//     shipper, which neither emulator offers: PutRecordBatch (at most 500
//     records and 4 MiB per call, records of at most 1,000 KiB, as the API
//     reference states) and PutRecord, delivery streams created on first use,
//     per-stream throughput limits, throttled calls and per-record
//     ServiceUnavailableException or InternalFailure. Delivered records are
//     written to a folder per delivery stream (Proxy.FirehoseDir,
//     Proxy.FirehoseData).
//   - Optionally (Config.FanOut), enhanced fan-out, which kinesis-mock serves
//     without the initial-response event the AWS SDK for Go v2 waits for.
//     The proxy keeps the consumers itself (RegisterStreamConsumer,
//     DescribeStreamConsumer, ListStreamConsumers, DeregisterStreamConsumer:
//     CREATING for FanOutConfig.ConsumerDelay, then ACTIVE; 20 per stream and
//     5 CREATING at once; ARNs of AWS's form
//     STREAM_ARN/consumer/NAME:CREATION_EPOCH_SECONDS) and answers
//     SubscribeToShard with an event stream (application/vnd.amazon.eventstream)
//     it feeds from the upstream shard with GetShardIterator and GetRecords:
//     the initial-response event, then SubscribeToShardEvent events with
//     Records, ContinuationSequenceNumber, MillisBehindLatest and, at a
//     closed shard's end, ChildShards, after which the stream ends. AWS's
//     rules: a subscription ends after 5 minutes on Config.Now; one call per
//     second per consumer and shard (LimitExceededException); a second call
//     within 5 s of a successful one gets ResourceInUseException, a later one
//     takes over and the old stream ends with a ResourceInUseException event;
//     2 MiB/s per consumer and shard. Faults (FanOutFaults, changed with
//     Proxy.SetFanOutFaults): streams cut mid-way and InternalFailureException
//     events. Before a subscription's first record, its
//     ContinuationSequenceNumber is one that resuming after reads what the
//     subscription would have: the starting one (AT_SEQUENCE_NUMBER: one
//     less), the last record's before the start (LATEST and AT_TIMESTAMP, found
//     by reading the shard from its trim horizon) or the shard's starting
//     sequence number. The listener serves HTTP/2 without TLS (prior
//     knowledge) beside HTTP/1.1, so that a client whose transport speaks
//     only HTTP/2 uses HTTP/2 as it does with AWS.
//   - CloudWatch GetMetricData for Kinesis's shard-level write metrics
//     (AWS/Kinesis IncomingBytes, IncomingRecords and
//     WriteProvisionedThroughputExceeded per StreamName and ShardId, statistic
//     Sum), answered from what the per-shard write limits admitted and
//     refused, counted per second of Config.Now for the last hour, so that
//     any Period of whole seconds can be asked for. It is served over the
//     Smithy RPC v2 CBOR protocol that aws-sdk-go-v2's CloudWatch client
//     speaks (POST /service/GraniteServiceVersion20100801/operation/...),
//     with a datapoint for each period that has ended since the shard's
//     first write. Writes under NoLimits are not counted.
//   - Optionally (Config.STS), an STS stand-in answering AssumeRole with
//     temporary credentials for the roles it lists (external IDs checked),
//     and (Config.RequireAccessKey) streams and delivery streams that only
//     calls signed with a given access key may use, so that a test proves
//     which credentials a client signed with.
//
// Stats counts requests, Kinesis records, user records (KPL aggregated
// records are deaggregated for the count) and bytes; GET /stats serves the
// same figures as JSON.
//
// From a test:
//
//	p := proxy.StartForTest(t, proxy.Config{Kinesis: proxy.KinesisFaults{InternalFailure: 0.1}})
//	client := testenv.KinesisClientAt(t, p.URL())
//
// The program integration/cmd/kinesisproxy runs the same proxy from the
// command line.
//
// Errors the proxy produces have the shape AWS sends (HTTP status, JSON body
// with __type and message, x-amzn-ErrorType header), so the AWS SDK for Go v2
// returns its typed errors, such as *types.ProvisionedThroughputExceededException.
// Bad input (malformed JSON, unknown target, oversized bodies) gets the error
// AWS would send; the proxy never crashes on it.
//
// The proxy forwards requests with their original signing headers and, where
// it rewrites a body, with a signature that no longer matches: it is meant for
// emulators, which do not verify signatures, not for real AWS endpoints.
package proxy
