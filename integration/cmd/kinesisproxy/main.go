// Command kinesisproxy runs the Kinesis and DynamoDB limits and
// fault-injection proxy (package integration/proxy) in front of the local
// emulators:
//
//	go run ./integration/cmd/kinesisproxy -kinesis http://127.0.0.1:4568 -dynamodb http://127.0.0.1:4569
//
// It prints AWS_ENDPOINT_URL=<its URL> on standard output once it listens,
// serves GET /stats (JSON counters), and prints the counters when it ends
// on SIGINT or SIGTERM. With -shard-lifecycle it answers ListShards with
// AWS's filters and ages closed shards out after -retention, or at once on
// POST /expire-shard?stream=NAME&shard=ID. With -firehose-dir it emulates
// Firehose delivery streams (records written to a folder per stream), with
// -sts-role it answers STS AssumeRole, with -require-key it lets only
// one access key write a stream, and with -fan-out it serves enhanced
// fan-out (the consumer calls and SubscribeToShard over HTTP/2, TLS or
// not). Run it with -h for every flag.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/kinesisgo/kinesis/integration/proxy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs the proxy until ctx ends and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, verbose, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "kinesisproxy:", err)
		return 2
	}
	if verbose {
		log, err := zap.NewDevelopment()
		if err != nil {
			fmt.Fprintln(stderr, "kinesisproxy:", err)
			return 1
		}
		defer func() { _ = log.Sync() }()
		cfg.Logger = log
	}
	p, err := proxy.Start(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "kinesisproxy:", err)
		return 1
	}
	fmt.Fprintf(stdout, "AWS_ENDPOINT_URL=%s\n", p.URL())
	<-ctx.Done()
	err = p.Close()
	b, _ := json.MarshalIndent(p.Stats(), "", "  ")
	fmt.Fprintf(stdout, "%s\n", b)
	if err != nil {
		fmt.Fprintln(stderr, "kinesisproxy: close:", err)
		return 1
	}
	return 0
}

const usage = `Usage: kinesisproxy -kinesis URL -dynamodb URL [flags]

kinesisproxy sits between AWS clients and the local Kinesis and DynamoDB
emulators and behaves like the real services under load and faults: per-shard
write and read limits, and injected errors, latency and dropped connections.
One listener serves both services (routing on X-Amz-Target); use its URL as
AWS_ENDPOINT_URL. It prints AWS_ENDPOINT_URL=<url> once listening, serves
GET /stats, and prints its counters on SIGINT or SIGTERM.

With -shard-lifecycle, ListShards follows AWS's ShardFilter types and
pagination, and a closed shard ages out -retention after it closed, or at
once on POST /expire-shard?stream=NAME&shard=ID (204 when done; 404 for an
unknown stream or shard, 409 for an open shard).

With -fan-out, RegisterStreamConsumer and the other consumer calls are
answered by the proxy, and SubscribeToShard streams events read from the
upstream shard with AWS's rules: subscriptions end after -fan-out-lifetime,
a second one for the same consumer and shard within 5 s is refused with
ResourceInUseException, one call per second per consumer and shard, and
-fan-out-bytes per consumer and shard. Clients reach it over HTTP/2 without
TLS (Go: http.Protocols with UnencryptedHTTP2).

Probabilities are in [0, 1]; durations are Go durations such as 50ms.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (proxy.Config, bool, error) {
	var cfg proxy.Config
	fs := flag.NewFlagSet("kinesisproxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Listen, "listen", "127.0.0.1:0", "address to listen on (port 0: any free port)")
	fs.StringVar(&cfg.KinesisURL, "kinesis", "", "upstream Kinesis endpoint, e.g. http://127.0.0.1:4568 (kinesis-mock)")
	fs.StringVar(&cfg.DynamoDBURL, "dynamodb", "", "upstream DynamoDB endpoint, e.g. http://127.0.0.1:4569 (dynalite)")
	fs.BoolVar(&cfg.Sink, "sink", false, "answer PutRecord and PutRecords in the proxy instead of forwarding them (for benchmarks)")
	fs.BoolVar(&cfg.NoLimits, "no-limits", false, "turn every limit off (per-shard and control-plane)")
	fs.BoolVar(&cfg.ControlPlaneLimits, "control-plane-limits", false, "apply AWS's call rates to control-plane calls (e.g. DescribeStream 10/s) and GetShardIterator (5/s per shard)")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the fault random source: the same seed reproduces the faults of the same request sequence")
	fs.IntVar(&cfg.Limits.WriteBytesPerSecond, "write-bytes", proxy.DefaultWriteBytesPerSecond, "per-shard write limit in bytes/s (data + partition key)")
	fs.IntVar(&cfg.Limits.WriteRecordsPerSecond, "write-records", proxy.DefaultWriteRecordsPerSecond, "per-shard write limit in records/s")
	fs.IntVar(&cfg.Limits.ReadBytesPerSecond, "read-bytes", proxy.DefaultReadBytesPerSecond, "per-shard GetRecords limit in bytes/s")
	fs.IntVar(&cfg.Limits.ReadCallsPerSecond, "read-calls", proxy.DefaultReadCallsPerSecond, "per-shard GetRecords limit in calls/s")
	fs.DurationVar(&cfg.ShardMapTTL, "shard-map-ttl", proxy.DefaultShardMapTTL, "how long a stream's shard list is cached")
	fs.BoolVar(&cfg.ShardLifecycle, "shard-lifecycle", false, "answer ListShards with AWS's filters and pagination, and age closed shards out after -retention (or on POST /expire-shard)")
	fs.DurationVar(&cfg.Retention, "retention", proxy.DefaultRetention, "retention period simulated by -shard-lifecycle")

	k := &cfg.Kinesis
	fs.Float64Var(&k.InternalFailure, "kinesis-internal-failure", 0, "probability that a PutRecords entry fails with InternalFailure")
	fs.Float64Var(&k.ServerError, "kinesis-500", 0, "probability of an HTTP 500 InternalFailure answer")
	fs.Float64Var(&k.Unavailable, "kinesis-503", 0, "probability of an HTTP 503 ServiceUnavailable answer")
	fs.Float64Var(&k.LimitExceeded, "kinesis-limit-exceeded", 0, "probability of LimitExceededException on control-plane calls")
	fs.Float64Var(&k.CloseConnection, "kinesis-close", 0, "probability that the connection is closed mid-response (after the call took effect)")
	fs.DurationVar(&k.Latency, "kinesis-latency", 0, "latency added to every Kinesis call")
	fs.DurationVar(&k.Jitter, "kinesis-jitter", 0, "random extra latency in [0, jitter) for Kinesis calls")
	kops := fs.String("kinesis-ops", "", "comma-separated Kinesis operations the faults apply to (default all), e.g. PutRecords,GetRecords")

	d := &cfg.DynamoDB
	fs.Float64Var(&d.ProvisionedThroughputExceeded, "dynamodb-throughput", 0, "probability of ProvisionedThroughputExceededException")
	fs.Float64Var(&d.Throttling, "dynamodb-throttling", 0, "probability of ThrottlingException")
	fs.Float64Var(&d.ServerError, "dynamodb-500", 0, "probability of an HTTP 500 InternalServerError answer")
	fs.Float64Var(&d.Unavailable, "dynamodb-503", 0, "probability of an HTTP 503 ServiceUnavailable answer")
	fs.Float64Var(&d.CloseConnection, "dynamodb-close", 0, "probability that the connection is closed mid-response (after the call took effect)")
	fs.DurationVar(&d.Latency, "dynamodb-latency", 0, "latency added to every DynamoDB call")
	fs.DurationVar(&d.Jitter, "dynamodb-jitter", 0, "random extra latency in [0, jitter) for DynamoDB calls")
	dops := fs.String("dynamodb-ops", "", "comma-separated DynamoDB operations the faults apply to (default all), e.g. UpdateItem")

	firehoseDir := fs.String("firehose-dir", "", "emulate Firehose PutRecordBatch and PutRecord, writing what each delivery stream receives to a folder of its own under this one")
	fh := proxy.FirehoseConfig{}
	fs.IntVar(&fh.RecordsPerSecond, "firehose-records", 0, "per-delivery-stream limit in records/s (0: none)")
	fs.IntVar(&fh.BytesPerSecond, "firehose-bytes", 0, "per-delivery-stream limit in bytes/s (0: none)")
	fs.Float64Var(&fh.Faults.Throttle, "firehose-throttle", 0, "probability that a Firehose call is answered ServiceUnavailableException whole")
	fs.Float64Var(&fh.Faults.RecordFailure, "firehose-record-failure", 0, "probability that one record of a PutRecordBatch fails")
	var roles, keys listFlag
	fs.Var(&roles, "sts-role", "answer STS AssumeRole for this role ARN, as ARN or ARN=EXTERNAL_ID (repeatable)")
	stsDuration := fs.Duration("sts-duration", 0, "lifetime of the credentials AssumeRole hands out (default: the request's, or 1h)")
	fs.Var(&keys, "require-key", "only this access key ID may sign calls naming the stream or delivery stream, as STREAM=ACCESS_KEY_ID (repeatable)")
	fanOut := fs.Bool("fan-out", false, "serve enhanced fan-out: stream consumers and SubscribeToShard, read from the upstream shards")
	var fan proxy.FanOutConfig
	fs.DurationVar(&fan.ConsumerDelay, "fan-out-consumer-delay", proxy.DefaultConsumerDelay, "how long a registered consumer stays CREATING (and a deregistered one DELETING); negative: none")
	fs.DurationVar(&fan.SubscriptionLifetime, "fan-out-lifetime", proxy.DefaultSubscriptionLifetime, "how long a subscription delivers events before the proxy ends it")
	fs.IntVar(&fan.BytesPerSecond, "fan-out-bytes", proxy.DefaultFanOutBytesPerSecond, "per-consumer, per-shard limit of the record bytes pushed, in bytes/s")
	fs.Float64Var(&fan.Faults.Cut, "fan-out-cut", 0, "probability that a subscription's stream is cut instead of sending an event")
	fs.Float64Var(&fan.Faults.InternalFailure, "fan-out-internal-failure", 0, "probability that a subscription ends with an InternalFailureException event instead of sending an event")
	verbose := fs.Bool("v", false, "log to standard error")
	if err := fs.Parse(args); err != nil {
		return cfg, false, err
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	k.Operations = splitList(*kops)
	d.Operations = splitList(*dops)
	if *firehoseDir != "" {
		fh.Dir = *firehoseDir
		cfg.Firehose = &fh
	} else if fh != (proxy.FirehoseConfig{}) {
		return cfg, false, errors.New("the -firehose-* settings need -firehose-dir")
	}
	if *fanOut {
		cfg.FanOut = &fan
	} else if fan != (proxy.FanOutConfig{ConsumerDelay: proxy.DefaultConsumerDelay, SubscriptionLifetime: proxy.DefaultSubscriptionLifetime,
		BytesPerSecond: proxy.DefaultFanOutBytesPerSecond}) {
		return cfg, false, errors.New("the -fan-out-* settings need -fan-out")
	}
	if len(roles) > 0 {
		cfg.STS = &proxy.STSConfig{Roles: map[string]proxy.STSRole{}, Duration: *stsDuration}
		for _, r := range roles {
			arn, ext, _ := strings.Cut(r, "=")
			cfg.STS.Roles[arn] = proxy.STSRole{ExternalID: ext}
		}
	} else if *stsDuration != 0 {
		return cfg, false, errors.New("-sts-duration needs -sts-role")
	}
	for _, kv := range keys {
		stream, key, ok := strings.Cut(kv, "=")
		if !ok || stream == "" || key == "" {
			return cfg, false, fmt.Errorf("-require-key %q: want STREAM=ACCESS_KEY_ID", kv)
		}
		if cfg.RequireAccessKey == nil {
			cfg.RequireAccessKey = map[string]string{}
		}
		cfg.RequireAccessKey[stream] = key
	}
	return cfg, *verbose, cfg.Validate()
}

// listFlag is a flag that may be given several times.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
