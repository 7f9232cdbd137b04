package proxy

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"go.uber.org/zap"
)

// AWS's per-shard limits, the defaults of Limits.
const (
	DefaultWriteBytesPerSecond   = 1 << 20
	DefaultWriteRecordsPerSecond = 1000
	DefaultReadBytesPerSecond    = 2 << 20
	DefaultReadCallsPerSecond    = 5
)

// DefaultShardMapTTL is how long a stream's shard map is used before it is
// listed again.
const DefaultShardMapTTL = 5 * time.Second

// MaxBodyBytes is the largest request body the proxy accepts. A PutRecords
// request is at most 5 MiB of data (10 MiB records where the stream allows
// them), which base64 grows by a third.
const MaxBodyBytes = 32 << 20

// Config configures a Proxy. The zero value plus one upstream URL is a
// working proxy with AWS's limits and no faults.
type Config struct {
	// Listen is the TCP address to listen on. Default "127.0.0.1:0" (a free
	// loopback port; see Proxy.URL).
	Listen string
	// KinesisURL is the upstream Kinesis endpoint, such as kinesis-mock at
	// "http://127.0.0.1:4568". Kinesis requests are refused with HTTP 503 when
	// it is empty. Required when Sink is set (for ListShards).
	KinesisURL string
	// DynamoDBURL is the upstream DynamoDB endpoint, such as dynalite at
	// "http://127.0.0.1:4569". DynamoDB requests are refused with HTTP 503
	// when it is empty.
	DynamoDBURL string
	// Sink makes the proxy answer PutRecord and PutRecords itself instead of
	// forwarding them; every other request is still forwarded. Default false.
	Sink bool
	// NoLimits turns every limit off: the per-shard write and read limits
	// and ControlPlaneLimits. Default false (per-shard limits on).
	NoLimits bool
	// Limits are the per-shard limits. Zero fields take AWS's values.
	Limits Limits
	// ControlPlaneLimits turns on AWS's documented call rates of the
	// control-plane operations (such as DescribeStream at 10 calls/s per
	// account and region, ListShards at 1,000/s per stream) and of
	// GetShardIterator (5/s per shard). Calls over them get
	// LimitExceededException (GetShardIterator:
	// ProvisionedThroughputExceededException). Default false, since callers
	// that poll DescribeStream may not expect it; NoLimits turns it off too.
	ControlPlaneLimits bool
	// Seed seeds the random source of the faults: the same seed and the same
	// sequence of requests give the same faults. Default 0 (a valid seed).
	Seed int64
	// Kinesis are the faults injected into Kinesis requests. Default none.
	Kinesis KinesisFaults
	// DynamoDB are the faults injected into DynamoDB requests. Default none.
	DynamoDB DynamoDBFaults
	// ShardMapTTL is how long a stream's shard map (from ListShards) is used
	// before it is listed again. Resharding calls that pass through the proxy,
	// and records whose hash key falls in no known open shard, refresh it
	// sooner. Default DefaultShardMapTTL (5s).
	ShardMapTTL time.Duration
	// ShardLifecycle makes the proxy model what the emulator leaves out of
	// shards' lifetimes, as the Kinesis API reference describes them. The
	// proxy answers ListShards itself, from the upstream's full list and the
	// creation and closing time of each shard it records on Now, with AWS's
	// ShardFilter types, ExclusiveStartShardId, MaxResults (default and
	// largest page 1,000) and NextToken (valid for 300s). A closed shard
	// ages out once it closed at least Retention ago, or at once with
	// Proxy.ExpireShard: no ListShards filter lists it, and GetShardIterator,
	// GetRecords (with an iterator handed out through the proxy) and
	// SubscribeToShard for it answer ResourceNotFoundException. Default
	// false: ListShards is forwarded, and shards never age out.
	ShardLifecycle bool
	// Retention is the retention period ShardLifecycle simulates. Default
	// (zero) DefaultRetention, 24h; Kinesis allows 24h to 8,760h, the proxy
	// any positive duration. The stream's own RetentionPeriodHours is not
	// read.
	Retention time.Duration
	// ModelIndexes makes the proxy keep the global secondary indexes an
	// UpdateTable adds to an existing DynamoDB table, as DynamoDB builds
	// them in place (dynalite does not): each is CREATING for
	// IndexBuildTime (DescribeTable shows it so; a Query on it fails with
	// a ValidationException, as on a backfilling index), then ACTIVE, and
	// a Query on it is answered from a Scan of the table filtered by the
	// key condition, in range key order. Default false: forwarded.
	ModelIndexes bool
	// IndexBuildTime is how long an index of ModelIndexes is CREATING, on
	// the clock Now. Default 0: ACTIVE at once.
	IndexBuildTime time.Duration
	// Now is the clock of the token buckets and of ShardLifecycle (the
	// shards' creation and closing times, Retention, NextToken expiry).
	// Default time.Now.
	Now func() time.Time
	// STS makes the proxy answer STS AssumeRole itself (requests signed
	// for service "sts", such as a client whose STS endpoint is the proxy's
	// URL). Default nil: STS requests are refused as unknown targets.
	STS *STSConfig
	// Firehose makes the proxy emulate Amazon Data Firehose's
	// PutRecordBatch and PutRecord (X-Amz-Target Firehose_20150804.*).
	// Default nil: Firehose requests are refused as unknown targets.
	Firehose *FirehoseConfig
	// FanOut makes the proxy serve enhanced fan-out itself (see
	// FanOutConfig): consumers registered with the proxy, and
	// SubscribeToShard event streams it reads from the upstream shard, with
	// AWS's rules and limits. Default nil: the consumer operations and
	// SubscribeToShard are forwarded.
	FanOut *FanOutConfig
	// RequireAccessKey maps a Kinesis stream or Firehose delivery stream
	// name to the only access key ID allowed to sign calls naming it (in
	// StreamName, StreamARN or DeliveryStreamName); calls signed with
	// another are answered AccessDeniedException, as AWS answers an
	// identity without permission on the stream. Calls that name no stream
	// (GetRecords, with its iterator) are not checked. Default nil: any key.
	RequireAccessKey map[string]string
	// Logger receives the proxy's logs. Default nil: no logging.
	Logger *zap.Logger
}

// Limits are per-shard throughput limits. A zero field takes AWS's value.
type Limits struct {
	// WriteBytesPerSecond limits the data plus partition key bytes written to
	// a shard. Default 1 MiB.
	WriteBytesPerSecond int
	// WriteRecordsPerSecond limits the records written to a shard. Default 1,000.
	WriteRecordsPerSecond int
	// ReadBytesPerSecond limits the data bytes GetRecords returns from a
	// shard. Default 2 MiB.
	ReadBytesPerSecond int
	// ReadCallsPerSecond limits the GetRecords calls on a shard. Default 5.
	ReadCallsPerSecond int
}

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.WriteBytesPerSecond, DefaultWriteBytesPerSecond)
	def(&l.WriteRecordsPerSecond, DefaultWriteRecordsPerSecond)
	def(&l.ReadBytesPerSecond, DefaultReadBytesPerSecond)
	def(&l.ReadCallsPerSecond, DefaultReadCallsPerSecond)
	return l
}

// KinesisFaults are the faults injected into Kinesis requests. Each
// probability is in [0, 1]; zero (the default) means never.
type KinesisFaults struct {
	// InternalFailure is the probability that a PutRecords entry fails with
	// ErrorCode InternalFailure (the entry is not forwarded).
	InternalFailure float64
	// ServerError is the probability that a request is answered with HTTP
	// 500 InternalFailure without being forwarded.
	ServerError float64
	// Unavailable is the probability that a request is answered with HTTP
	// 503 ServiceUnavailable without being forwarded.
	Unavailable float64
	// LimitExceeded is the probability that a control-plane request (any
	// operation but PutRecord, PutRecords, GetRecords, GetShardIterator and
	// SubscribeToShard) is answered with LimitExceededException without being
	// forwarded.
	LimitExceeded float64
	// CloseConnection is the probability that, after the request has been
	// handled (forwarded and taken effect upstream), the connection is closed
	// part way through the response. It does not apply to SubscribeToShard,
	// whose event stream is passed through as it arrives.
	CloseConnection float64
	// Latency is added before each request is handled. Default 0.
	Latency time.Duration
	// Jitter adds a uniformly random extra delay in [0, Jitter). Default 0.
	Jitter time.Duration
	// Operations limits every fault above to the named operations (such as
	// "PutRecords"). Default empty: all operations.
	Operations []string
}

// DynamoDBFaults are the faults injected into DynamoDB requests. Each
// probability is in [0, 1]; zero (the default) means never. No fault is
// forwarded: the request does not take effect, except with CloseConnection.
type DynamoDBFaults struct {
	// ProvisionedThroughputExceeded is the probability of HTTP 400
	// ProvisionedThroughputExceededException.
	ProvisionedThroughputExceeded float64
	// Throttling is the probability of HTTP 400 ThrottlingException.
	Throttling float64
	// ServerError is the probability of HTTP 500 InternalServerError.
	ServerError float64
	// Unavailable is the probability of HTTP 503 ServiceUnavailable.
	Unavailable float64
	// CloseConnection is the probability that, after the request has been
	// forwarded and taken effect, the connection is closed part way through
	// the response.
	CloseConnection float64
	// Latency is added before each request is handled. Default 0.
	Latency time.Duration
	// Jitter adds a uniformly random extra delay in [0, Jitter). Default 0.
	Jitter time.Duration
	// Operations limits every fault above to the named operations (such as
	// "UpdateItem"). Default empty: all operations.
	Operations []string
}

// Validate reports the first thing wrong with c.
func (c Config) Validate() error {
	if c.KinesisURL == "" && c.DynamoDBURL == "" {
		return errors.New("proxy: at least one of KinesisURL and DynamoDBURL is required")
	}
	if c.Sink && c.KinesisURL == "" {
		return errors.New("proxy: Sink needs KinesisURL (shard maps come from ListShards)")
	}
	for name, u := range map[string]string{"KinesisURL": c.KinesisURL, "DynamoDBURL": c.DynamoDBURL} {
		if u == "" {
			continue
		}
		p, err := url.Parse(u)
		if err != nil {
			return fmt.Errorf("proxy: %s: %w", name, err)
		}
		if (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("proxy: %s %q: want http://host:port or https://host:port", name, u)
		}
	}
	l := c.Limits
	for name, v := range map[string]int{
		"WriteBytesPerSecond": l.WriteBytesPerSecond, "WriteRecordsPerSecond": l.WriteRecordsPerSecond,
		"ReadBytesPerSecond": l.ReadBytesPerSecond, "ReadCallsPerSecond": l.ReadCallsPerSecond,
	} {
		if v < 0 {
			return fmt.Errorf("proxy: Limits.%s is %d, want >= 0", name, v)
		}
	}
	if c.Retention < 0 {
		return fmt.Errorf("proxy: Retention is %v, want > 0 (or 0 for the default)", c.Retention)
	}
	if c.ShardMapTTL < 0 {
		return fmt.Errorf("proxy: ShardMapTTL is %v, want >= 0", c.ShardMapTTL)
	}
	if err := c.Kinesis.Validate(); err != nil {
		return err
	}
	if c.STS != nil {
		if err := c.STS.Validate(); err != nil {
			return err
		}
	}
	if c.Firehose != nil {
		if err := c.Firehose.Validate(); err != nil {
			return err
		}
	}
	if c.FanOut != nil {
		if err := c.FanOut.Validate(); err != nil {
			return err
		}
	}
	return c.DynamoDB.Validate()
}

// Validate reports the first thing wrong with f.
func (f KinesisFaults) Validate() error {
	return validateFaults("Kinesis", map[string]float64{
		"InternalFailure": f.InternalFailure, "ServerError": f.ServerError, "Unavailable": f.Unavailable,
		"LimitExceeded": f.LimitExceeded, "CloseConnection": f.CloseConnection,
	}, f.Latency, f.Jitter, f.Operations, kinesisOps)
}

// Validate reports the first thing wrong with f.
func (f DynamoDBFaults) Validate() error {
	return validateFaults("DynamoDB", map[string]float64{
		"ProvisionedThroughputExceeded": f.ProvisionedThroughputExceeded, "Throttling": f.Throttling,
		"ServerError": f.ServerError, "Unavailable": f.Unavailable, "CloseConnection": f.CloseConnection,
	}, f.Latency, f.Jitter, f.Operations, dynamoDBOps)
}

func validateFaults(service string, probs map[string]float64, latency, jitter time.Duration, ops []string, known map[string]bool) error {
	for name, p := range probs {
		if !(p >= 0 && p <= 1) { // also rejects NaN
			return fmt.Errorf("proxy: %s faults: %s is %v, want a probability in [0, 1]", service, name, p)
		}
	}
	if latency < 0 || jitter < 0 {
		return fmt.Errorf("proxy: %s faults: negative latency (%v) or jitter (%v)", service, latency, jitter)
	}
	for _, op := range ops {
		if !known[op] {
			return fmt.Errorf("proxy: %s faults: unknown operation %q", service, op)
		}
	}
	return nil
}
