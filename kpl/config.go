package kpl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/internal/streamref"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// KinesisAPI is the part of the Kinesis client the producer calls: writing
// records, and listing the stream's open shards to predict which shard each
// record goes to. *kinesis.Client implements it.
type KinesisAPI interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// Kinesis limits the producer works within.
const (
	// MaxPartitionKeyChars is the longest partition key, in Unicode
	// characters counted as UTF-16 code units.
	MaxPartitionKeyChars = 256
	// DefaultMaxRecordSize is the largest record (data plus partition key)
	// a stream accepts unless its limit was raised: 1 MiB.
	DefaultMaxRecordSize = 1 << 20
	// MaxRequestEntries is the most entries in one PutRecords request.
	MaxRequestEntries = 500
	// MaxRequestSize is the most bytes (data plus partition keys) in one
	// PutRecords request: 5 MiB. Streams whose maximum record size was
	// raised above it take requests as large as that record size.
	MaxRequestSize = 5 << 20
	// ShardBytesPerSecond and ShardRecordsPerSecond are a shard's write limits.
	ShardBytesPerSecond   = 1 << 20
	ShardRecordsPerSecond = 1000
)

// Config configures a Producer. The zero value of every field but Stream
// selects its default; the defaults are those of AWS's KPL where it has one.
type Config struct {
	// Stream is the stream's name or ARN. Required.
	Stream string

	// Kinesis is the Kinesis client. Default: a *kinesis.Client built from
	// the standard AWS config chain, with the SDK's own retries turned off
	// (the producer retries itself).
	Kinesis KinesisAPI

	// DisableAggregation sends every user record as its own Kinesis record.
	// Default false: user records predicted for the same shard are packed
	// into KPL aggregated records.
	DisableAggregation bool
	// AggregationMaxSize caps the size of an aggregated record in bytes,
	// framing included (before compression). Default 51,200 B. At most
	// MaxRecordSize minus one.
	AggregationMaxSize int
	// Compression compresses aggregated records. Default aggregation.None.
	// Only this project's consumer (aggregation.Decode) reads compressed
	// records; AWS's KCL delivers them as opaque plain records.
	Compression aggregation.Compression

	// CollectionMaxCount caps the entries of one PutRecords request.
	// Default and maximum 500.
	CollectionMaxCount int
	// CollectionMaxSize caps the bytes (data plus partition keys) of one
	// PutRecords request. Default and maximum 5 MiB, or MaxRecordSize when
	// that is larger.
	CollectionMaxSize int
	// RecordMaxBufferedTime is how long a record may wait to be sent so
	// that it can share an aggregated record and a request with others.
	// Default 100 ms.
	RecordMaxBufferedTime time.Duration
	// MaxConnections caps the PutRecords requests in flight. Default 24.
	MaxConnections int
	// RequestTimeout bounds one PutRecords or ListShards call. Default 6 s.
	RequestTimeout time.Duration

	// RateLimit is the highest rate, in percent of a shard's write limits
	// (1 MiB/s and 1,000 records/s), at which the producer sends to each
	// shard. Default 150. When the service throttles a shard, the producer
	// cuts that shard's rate by a fifth and grows it back by 5 % of
	// RateLimit per second without throttling, so that it rides at the
	// limit, alone or sharing the shard with other producers.
	RateLimit int

	// RecordTTL is how long a record may go unwritten, retries included,
	// before it fails with ErrRecordExpired. Default 30 s.
	RecordTTL time.Duration
	// MinBackoff and MaxBackoff bound the delay before a shard's records
	// are sent again after a failed attempt: a random duration up to
	// MinBackoff·2^(failures-1), at most MaxBackoff (full jitter). A failed
	// ListShards call is retried after MinBackoff·2^(failures-1), at most
	// 30 s. Defaults 100 ms and 5 s.
	MinBackoff time.Duration
	MaxBackoff time.Duration

	// PreserveOrder keeps at most one request in flight per shard and at
	// most one entry per shard in a request, so that records with the same
	// partition key are written in the order they were put, retries
	// included. Default false: faster, but a retried record may land after
	// later ones.
	PreserveOrder bool

	// MaxRecordSize is the largest user record (data plus partition key)
	// in bytes. Default 1 MiB; raise it only for streams whose maximum
	// record size was raised (up to 10 MiB).
	MaxRecordSize int

	// MaxBufferedRecords and MaxBufferedBytes bound the records put but not
	// yet completed, and the memory they take: MaxBufferedBytes counts
	// their data plus partition key plus 128 bytes of the producer's own
	// per record, plus the PutRecords request bodies in flight, twice (the
	// Go heap's room to grow between collections at GOGC=100), so that
	// records fill at most half of it and request bodies in flight at most
	// an eighth. When either is reached, Put blocks until there is room or
	// its context ends, or
	// fails with ErrBufferFull if FailWhenBufferFull is set. Defaults
	// 500,000 records and 64 MiB, each lowered, once the shard map is
	// known, to what the stream can take in half of RecordTTL at its write
	// limits (bytes: 1 MiB/s per shard, so 15 MiB for one shard with the
	// default TTL; records, only with DisableAggregation: 1,000/s per
	// shard), so that records put faster than the stream takes them make
	// Put block rather than expire. A value set here is used as it is:
	// keep it below what the stream can take in RecordTTL.
	MaxBufferedRecords int
	MaxBufferedBytes   int
	// FailWhenBufferFull makes Put fail at once with ErrBufferFull instead
	// of blocking when the buffer is full. Default false.
	FailWhenBufferFull bool

	// Logger receives the producer's logs. Default: none.
	Logger *zap.Logger
	// Metrics registers the producer's metrics (kinesis_kpl_*). Default: none.
	Metrics prometheus.Registerer

	// minRefreshInterval spaces shard map refreshes (tests shorten it).
	// Default 1 s.
	minRefreshInterval time.Duration
}

// Defaults.
const (
	DefaultAggregationMaxSize    = 51200
	DefaultRecordMaxBufferedTime = 100 * time.Millisecond
	DefaultMaxConnections        = 24
	DefaultRequestTimeout        = 6 * time.Second
	DefaultRateLimit             = 150
	DefaultRecordTTL             = 30 * time.Second
	DefaultMinBackoff            = 100 * time.Millisecond
	DefaultMaxBackoff            = 5 * time.Second
	DefaultMaxBufferedRecords    = 500_000
	DefaultMaxBufferedBytes      = 64 << 20
	maxStreamRecordSize          = 10 << 20
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	set := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	setD := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	set(&c.MaxRecordSize, DefaultMaxRecordSize)
	set(&c.AggregationMaxSize, min(DefaultAggregationMaxSize, c.MaxRecordSize-1))
	set(&c.CollectionMaxCount, MaxRequestEntries)
	set(&c.CollectionMaxSize, max(MaxRequestSize, c.MaxRecordSize))
	set(&c.MaxConnections, DefaultMaxConnections)
	set(&c.RateLimit, DefaultRateLimit)
	set(&c.MaxBufferedRecords, DefaultMaxBufferedRecords)
	set(&c.MaxBufferedBytes, DefaultMaxBufferedBytes)
	setD(&c.RecordMaxBufferedTime, DefaultRecordMaxBufferedTime)
	setD(&c.RequestTimeout, DefaultRequestTimeout)
	setD(&c.RecordTTL, DefaultRecordTTL)
	setD(&c.MinBackoff, DefaultMinBackoff)
	setD(&c.MaxBackoff, DefaultMaxBackoff)
	setD(&c.minRefreshInterval, time.Second)
	return c
}

// Validate reports the first problem with c, naming the field.
func (c Config) Validate() error {
	if c.Stream == "" {
		return errors.New("kpl: Config.Stream is required")
	}
	if _, err := streamref.Parse(c.Stream); err != nil {
		return fmt.Errorf("kpl: Config.Stream: %w", err)
	}
	d := c.withDefaults()
	switch {
	case c.MaxRecordSize < 0 || c.MaxRecordSize > maxStreamRecordSize:
		return fmt.Errorf("kpl: Config.MaxRecordSize %d outside [1, %d] bytes", c.MaxRecordSize, maxStreamRecordSize)
	case c.AggregationMaxSize < 0 || d.AggregationMaxSize <= aggregation.Overhead || d.AggregationMaxSize >= d.MaxRecordSize:
		return fmt.Errorf("kpl: Config.AggregationMaxSize %d outside [%d, MaxRecordSize-1 = %d] bytes", c.AggregationMaxSize, aggregation.Overhead+1, d.MaxRecordSize-1)
	case c.Compression > aggregation.Zstd:
		return fmt.Errorf("kpl: Config.Compression: unknown %v", c.Compression)
	case c.CollectionMaxCount < 0 || c.CollectionMaxCount > MaxRequestEntries:
		return fmt.Errorf("kpl: Config.CollectionMaxCount %d outside [1, %d]", c.CollectionMaxCount, MaxRequestEntries)
	case c.CollectionMaxSize < 0 || c.CollectionMaxSize > max(MaxRequestSize, d.MaxRecordSize):
		return fmt.Errorf("kpl: Config.CollectionMaxSize %d outside [1, %d] bytes", c.CollectionMaxSize, max(MaxRequestSize, d.MaxRecordSize))
	case d.CollectionMaxSize < d.MaxRecordSize:
		return fmt.Errorf("kpl: Config.CollectionMaxSize %d below MaxRecordSize %d", d.CollectionMaxSize, d.MaxRecordSize)
	case c.RecordMaxBufferedTime < 0:
		return fmt.Errorf("kpl: Config.RecordMaxBufferedTime %v is negative", c.RecordMaxBufferedTime)
	case c.MaxConnections < 0:
		return fmt.Errorf("kpl: Config.MaxConnections %d is negative", c.MaxConnections)
	case c.RequestTimeout < 0:
		return fmt.Errorf("kpl: Config.RequestTimeout %v is negative", c.RequestTimeout)
	case c.RateLimit < 0:
		return fmt.Errorf("kpl: Config.RateLimit %d%% is negative", c.RateLimit)
	case c.RecordTTL < 0:
		return fmt.Errorf("kpl: Config.RecordTTL %v is negative", c.RecordTTL)
	case c.MinBackoff < 0 || c.MaxBackoff < 0 || d.MinBackoff > d.MaxBackoff:
		return fmt.Errorf("kpl: Config.MinBackoff %v and MaxBackoff %v: want 0 <= MinBackoff <= MaxBackoff", d.MinBackoff, d.MaxBackoff)
	case c.MaxBufferedRecords < 0:
		return fmt.Errorf("kpl: Config.MaxBufferedRecords %d is negative", c.MaxBufferedRecords)
	case c.MaxBufferedBytes < 0:
		return fmt.Errorf("kpl: Config.MaxBufferedBytes %d is negative", c.MaxBufferedBytes)
	case d.MaxBufferedBytes < d.MaxRecordSize:
		return fmt.Errorf("kpl: Config.MaxBufferedBytes %d below MaxRecordSize %d", d.MaxBufferedBytes, d.MaxRecordSize)
	}
	return nil
}
