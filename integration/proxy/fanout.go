package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Enhanced fan-out facts from the Kinesis Data Streams API reference
// (RegisterStreamConsumer, SubscribeToShard).
const (
	// DefaultMaxConsumers is how many consumers a stream may have
	// registered: "You can register up to 20 consumers per stream."
	DefaultMaxConsumers = 20
	// maxCreatingConsumers: "only 5 consumers can be created simultaneously
	// ... Registering a 6th consumer while there are 5 in a CREATING status
	// results in a LimitExceededException."
	maxCreatingConsumers = 5
	// DefaultSubscriptionLifetime: events flow "for up to 5 minutes, after
	// which time you need to call SubscribeToShard again".
	DefaultSubscriptionLifetime = 5 * time.Minute
	// takeOverAfter: a second call "within 5 seconds of a successful call"
	// gets ResourceInUseException; "5 seconds or more after a successful
	// call, the second call takes over the subscription".
	takeOverAfter = 5 * time.Second
	// DefaultFanOutBytesPerSecond: "up to 2 MiB per second for every shard
	// you subscribe to", per consumer.
	DefaultFanOutBytesPerSecond = 2 << 20
	// DefaultConsumerDelay is how long a consumer stays CREATING (and
	// DELETING) when FanOutConfig.ConsumerDelay is zero.
	DefaultConsumerDelay = 500 * time.Millisecond
	// DefaultFanOutPollInterval is how often a subscription reads the
	// upstream shard while it has no new records.
	DefaultFanOutPollInterval = 50 * time.Millisecond
	codeResourceInUse         = "ResourceInUseException"
)

// consumerNamePattern is ConsumerName's pattern in the API reference (1 to
// 128 characters).
var consumerNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// FanOutConfig makes the proxy serve enhanced fan-out itself:
// RegisterStreamConsumer, DescribeStreamConsumer, ListStreamConsumers,
// DeregisterStreamConsumer and SubscribeToShard, whose events it reads from
// the upstream with GetShardIterator and GetRecords. The zero value has
// AWS's limits and no faults.
type FanOutConfig struct {
	// ConsumerDelay is how long a registered consumer stays CREATING before
	// it is ACTIVE, and a deregistered one DELETING before it is gone, on
	// Config.Now. Default (zero) DefaultConsumerDelay; negative: no delay.
	ConsumerDelay time.Duration
	// MaxConsumers is how many consumers a stream may have. Default (zero)
	// DefaultMaxConsumers, 20.
	MaxConsumers int
	// SubscriptionLifetime is how long a subscription delivers events, on
	// Config.Now, before the proxy ends its stream. Default (zero)
	// DefaultSubscriptionLifetime, 5 minutes.
	SubscriptionLifetime time.Duration
	// BytesPerSecond limits the record bytes one consumer reads from one
	// shard. Default (zero) DefaultFanOutBytesPerSecond, 2 MiB; Config.NoLimits
	// turns it off, with the limit of one SubscribeToShard call per second
	// per consumer and shard.
	BytesPerSecond int
	// PollInterval is how often, in real time, a subscription reads the
	// upstream shard while no new records arrive. Default (zero)
	// DefaultFanOutPollInterval, 50ms.
	PollInterval time.Duration
	// Faults are injected into subscriptions' event streams. Default none.
	Faults FanOutFaults
}

// FanOutFaults are faults of SubscribeToShard event streams. Each
// probability is in [0, 1], drawn once before each event the proxy would
// send; zero (the default) means never.
type FanOutFaults struct {
	// Cut is the probability that the stream is cut instead: the HTTP/2
	// stream is reset (HTTP/1.1: the connection is closed) with no
	// closing event, as when a connection fails mid-way.
	Cut float64
	// InternalFailure is the probability that an InternalFailureException
	// event is sent instead, ending the subscription.
	InternalFailure float64
}

// Validate reports the first thing wrong with c.
func (c FanOutConfig) Validate() error {
	if c.MaxConsumers < 0 || c.BytesPerSecond < 0 {
		return fmt.Errorf("proxy: FanOut: MaxConsumers (%d) and BytesPerSecond (%d) must be >= 0", c.MaxConsumers, c.BytesPerSecond)
	}
	if c.SubscriptionLifetime < 0 || c.PollInterval < 0 {
		return fmt.Errorf("proxy: FanOut: SubscriptionLifetime (%v) and PollInterval (%v) must be >= 0", c.SubscriptionLifetime, c.PollInterval)
	}
	return c.Faults.Validate()
}

// Validate reports the first thing wrong with f.
func (f FanOutFaults) Validate() error {
	for name, p := range map[string]float64{"Cut": f.Cut, "InternalFailure": f.InternalFailure} {
		if !(p >= 0 && p <= 1) {
			return fmt.Errorf("proxy: FanOut faults: %s is %v, want a probability in [0, 1]", name, p)
		}
	}
	return nil
}

func (c FanOutConfig) withDefaults() FanOutConfig {
	switch {
	case c.ConsumerDelay == 0:
		c.ConsumerDelay = DefaultConsumerDelay
	case c.ConsumerDelay < 0:
		c.ConsumerDelay = 0
	}
	if c.MaxConsumers == 0 {
		c.MaxConsumers = DefaultMaxConsumers
	}
	if c.SubscriptionLifetime == 0 {
		c.SubscriptionLifetime = DefaultSubscriptionLifetime
	}
	if c.BytesPerSecond == 0 {
		c.BytesPerSecond = DefaultFanOutBytesPerSecond
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultFanOutPollInterval
	}
	return c
}

// fanOutOps are the operations the proxy answers under Config.FanOut.
var fanOutOps = map[string]bool{
	"RegisterStreamConsumer": true, "DescribeStreamConsumer": true,
	"ListStreamConsumers": true, "DeregisterStreamConsumer": true,
}

// consumer is a registered stream consumer.
type consumer struct {
	name, arn, streamARN string
	streamKey            string // region/stream name
	created, activeAt    time.Time
	deleteAt             time.Time // zero until deregistered
}

func (c *consumer) status(now time.Time) string {
	switch {
	case !c.deleteAt.IsZero():
		return "DELETING"
	case now.Before(c.activeAt):
		return "CREATING"
	}
	return "ACTIVE"
}

func (c *consumer) gone(now time.Time) bool { return !c.deleteAt.IsZero() && !now.Before(c.deleteAt) }

// fanOut is the proxy's enhanced fan-out state.
type fanOut struct {
	cfg FanOutConfig

	mu        sync.Mutex
	consumers map[string][]*consumer   // by stream key, in registration order
	subs      map[string]*subscription // by consumer ARN + "|" + shard ID
	faults    FanOutFaults
	stats     FanOutStats
}

func newFanOut(cfg FanOutConfig) *fanOut {
	return &fanOut{cfg: cfg.withDefaults(), consumers: make(map[string][]*consumer),
		subs: make(map[string]*subscription), faults: cfg.Faults}
}

// FanOutStats count the proxy's SubscribeToShard subscriptions.
type FanOutStats struct {
	// Subscriptions is how many SubscribeToShard calls succeeded.
	Subscriptions int64
	// Refused counts SubscribeToShard calls answered with an error.
	Refused int64
	// TakenOver counts subscriptions ended by a later call's take-over.
	TakenOver int64
	// Expired counts subscriptions ended at SubscriptionLifetime.
	Expired int64
	// Events counts SubscribeToShardEvent events sent.
	Events int64
	// Records counts the records those events carried.
	Records int64
	// Faults counts the streams cut and InternalFailure events sent.
	Faults int64
}

// FanOutStats returns the counts of the proxy's subscriptions (all zero
// without Config.FanOut).
func (p *Proxy) FanOutStats() FanOutStats {
	if p.fan == nil {
		return FanOutStats{}
	}
	p.fan.mu.Lock()
	defer p.fan.mu.Unlock()
	return p.fan.stats
}

// SetFanOutFaults replaces the faults of SubscribeToShard event streams
// while the proxy runs. It needs Config.FanOut.
func (p *Proxy) SetFanOutFaults(f FanOutFaults) error {
	if p.fan == nil {
		return errors.New("proxy: SetFanOutFaults: Config.FanOut is not set")
	}
	if err := f.Validate(); err != nil {
		return err
	}
	p.fan.mu.Lock()
	defer p.fan.mu.Unlock()
	p.fan.faults = f
	return nil
}

// prune drops the consumers whose deregistration has completed. f.mu must
// be held.
func (f *fanOut) prune(key string, now time.Time) []*consumer {
	cs := slices.DeleteFunc(f.consumers[key], func(c *consumer) bool { return c.gone(now) })
	f.consumers[key] = cs
	return cs
}

// byARN finds a consumer that is not gone. f.mu must be held.
func (f *fanOut) byARN(arn string, now time.Time) *consumer {
	for _, c := range f.prune(consumerStreamKeyOf(arn), now) {
		if c.arn == arn {
			return c
		}
	}
	return nil
}

// consumerStreamKeyOf is the stream key of a consumer ARN:
// arn:aws:kinesis:REGION:ACCOUNT:stream/NAME/consumer/CONSUMER:EPOCH.
func consumerStreamKeyOf(arn string) string {
	return arnRegion(arn) + "/" + consumerStream(arn).name()
}

// arnRegion is the region field of an ARN, or "".
func arnRegion(arn string) string {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

// consumerInput is the input of the consumer operations.
type consumerInput struct {
	StreamARN    string `json:",omitempty"`
	ConsumerName string `json:",omitempty"`
	ConsumerARN  string `json:",omitempty"`
	MaxResults   *int   `json:",omitempty"`
	NextToken    string `json:",omitempty"`
}

type consumerJSON struct {
	ConsumerName              string
	ConsumerARN               string
	ConsumerStatus            string
	ConsumerCreationTimestamp float64
	StreamARN                 string `json:",omitempty"`
}

func (c *consumer) json(now time.Time, withStream bool) consumerJSON {
	out := consumerJSON{ConsumerName: c.name, ConsumerARN: c.arn, ConsumerStatus: c.status(now),
		ConsumerCreationTimestamp: float64(c.created.UnixMilli()) / 1000}
	if withStream {
		out.StreamARN = c.streamARN
	}
	return out
}

// consumerOp answers one of fanOutOps.
func (p *Proxy) consumerOp(ctx context.Context, op string, h http.Header, body []byte) response {
	var in consumerInput
	if err := json.Unmarshal(body, &in); err != nil {
		return p.bad(badRequest(codeSerialization, "%s: %v", op, err))
	}
	if op == "RegisterStreamConsumer" || op == "ListStreamConsumers" || in.ConsumerARN == "" {
		if in.StreamARN == "" {
			return p.bad(badRequest(codeInvalidArgument, "%s: StreamARN is required", op))
		}
		// The stream must exist upstream; its answer (such as
		// ResourceNotFoundException) is the caller's.
		resp, err := p.callUpstream(ctx, h, "DescribeStreamSummary", streamRef{ARN: in.StreamARN})
		if err != nil {
			return errorResponse(kinesisService, upstreamFailure(err))
		}
		if resp.status != http.StatusOK {
			return resp
		}
	}
	now := p.cfg.Now()
	f := p.fan
	f.mu.Lock()
	defer f.mu.Unlock()
	var out any
	var e *awsError
	switch op {
	case "RegisterStreamConsumer":
		out, e = f.register(in, now)
	case "DescribeStreamConsumer":
		var c *consumer
		if c, e = f.find(in, now); e == nil {
			out = struct{ ConsumerDescription consumerJSON }{c.json(now, true)}
		}
	case "ListStreamConsumers":
		out, e = f.list(in, now)
	case "DeregisterStreamConsumer":
		var c *consumer
		if c, e = f.find(in, now); e == nil {
			if c.deleteAt.IsZero() {
				c.deleteAt = now.Add(f.cfg.ConsumerDelay)
				// A deregistered consumer's subscriptions end.
				for key, s := range f.subs {
					if strings.HasPrefix(key, c.arn+"|") {
						s.end(nil)
					}
				}
			}
			out = struct{}{}
		}
	}
	if e != nil {
		return errorResponse(kinesisService, *e)
	}
	b, _ := json.Marshal(out)
	return jsonResponse(kinesisService, b)
}

// register adds a consumer. f.mu must be held.
func (f *fanOut) register(in consumerInput, now time.Time) (any, *awsError) {
	if !consumerNamePattern.MatchString(in.ConsumerName) {
		return nil, badRequest(codeInvalidArgument, "ConsumerName %q must be 1 to 128 of [a-zA-Z0-9_.-]", in.ConsumerName)
	}
	key := arnRegion(in.StreamARN) + "/" + streamRef{ARN: in.StreamARN}.name()
	cs := f.prune(key, now)
	creating := 0
	for _, c := range cs {
		if c.name == in.ConsumerName {
			return nil, badRequest(codeResourceInUse, "Consumer %s under stream %s already exists.", c.name, in.StreamARN)
		}
		if c.status(now) == "CREATING" {
			creating++
		}
	}
	if len(cs) >= f.cfg.MaxConsumers {
		return nil, badRequest(codeLimitExceeded, "Stream %s has %d registered consumers, the limit.", in.StreamARN, len(cs))
	}
	if creating >= maxCreatingConsumers {
		return nil, badRequest(codeLimitExceeded, "Stream %s already has %d consumers in CREATING status.", in.StreamARN, creating)
	}
	// AWS's consumer ARN: the stream's ARN, "/consumer/", the name and the
	// creation time in epoch seconds.
	c := &consumer{
		name: in.ConsumerName, streamARN: in.StreamARN, streamKey: key, created: now,
		arn:      in.StreamARN + "/consumer/" + in.ConsumerName + ":" + strconv.FormatInt(now.Unix(), 10),
		activeAt: now.Add(f.cfg.ConsumerDelay),
	}
	f.consumers[key] = append(cs, c)
	return struct{ Consumer consumerJSON }{c.json(now, false)}, nil
}

// find finds the consumer named by ConsumerARN, or by StreamARN and
// ConsumerName. f.mu must be held.
func (f *fanOut) find(in consumerInput, now time.Time) (*consumer, *awsError) {
	if in.ConsumerARN != "" {
		if c := f.byARN(in.ConsumerARN, now); c != nil {
			return c, nil
		}
		e := resourceNotFound("Consumer %s not found.", in.ConsumerARN)
		return nil, &e
	}
	if in.ConsumerName == "" {
		return nil, badRequest(codeInvalidArgument, "either ConsumerARN or StreamARN and ConsumerName are required")
	}
	key := arnRegion(in.StreamARN) + "/" + streamRef{ARN: in.StreamARN}.name()
	for _, c := range f.prune(key, now) {
		if c.name == in.ConsumerName {
			return c, nil
		}
	}
	e := resourceNotFound("Consumer %s under stream %s not found.", in.ConsumerName, in.StreamARN)
	return nil, &e
}

// list answers ListStreamConsumers: MaxResults 1 to 10,000 (default 100),
// NextToken the position of the next consumer. f.mu must be held.
func (f *fanOut) list(in consumerInput, now time.Time) (any, *awsError) {
	limit := 100
	if in.MaxResults != nil {
		if *in.MaxResults < 1 || *in.MaxResults > 10000 {
			return nil, badRequest(codeInvalidArgument, "MaxResults %d: want 1 to 10000", *in.MaxResults)
		}
		limit = *in.MaxResults
	}
	cs := f.prune(arnRegion(in.StreamARN)+"/"+streamRef{ARN: in.StreamARN}.name(), now)
	start := 0
	if in.NextToken != "" {
		i := slices.IndexFunc(cs, func(c *consumer) bool { return c.arn == in.NextToken })
		if i < 0 {
			return nil, badRequest(codeInvalidArgument, "NextToken %q is not valid", in.NextToken)
		}
		start = i
	}
	out := struct {
		Consumers []consumerJSON
		NextToken string `json:",omitempty"`
	}{Consumers: []consumerJSON{}}
	for i := start; i < len(cs); i++ {
		if len(out.Consumers) == limit {
			out.NextToken = cs[i].arn
			break
		}
		out.Consumers = append(out.Consumers, cs[i].json(now, false))
	}
	return out, nil
}

// callUpstream calls a Kinesis operation upstream with the caller's
// headers.
func (p *Proxy) callUpstream(ctx context.Context, h http.Header, op string, in any) (response, error) {
	hdr := h.Clone()
	hdr.Set("X-Amz-Target", kinesisTargetPrefix+op)
	hdr.Set("Content-Type", kinesisService.contentType())
	body, err := json.Marshal(in)
	if err != nil {
		return response{}, err
	}
	return p.forward(ctx, kinesisService, hdr, body)
}
