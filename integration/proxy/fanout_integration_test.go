package proxy_test

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

// fanOutProxy starts a proxy serving fan-out on a manual clock, and a
// Kinesis client for it that speaks HTTP/2 without TLS only, so that every
// call, SubscribeToShard's event stream included, goes over HTTP/2.
func fanOutProxy(t *testing.T, cfg proxy.FanOutConfig) (*proxy.Proxy, *kinesis.Client, *testenv.Clock) {
	t.Helper()
	clock := testenv.NewClock(time.Unix(1.7e9, 0))
	p := proxy.StartForTest(t, proxy.Config{Now: clock.Now, FanOut: &cfg})
	protos := new(http.Protocols)
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: protos}
	t.Cleanup(tr.CloseIdleConnections)
	client := kinesis.NewFromConfig(testenv.AWSConfig(t, p.URL()), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.HTTPClient = &http.Client{Transport: tr}
		o.RetryMaxAttempts = 1
	})
	return p, client, clock
}

func streamARN(t *testing.T, client *kinesis.Client, stream string) string {
	t.Helper()
	out, err := client.DescribeStreamSummary(ctxT(t), &kinesis.DescribeStreamSummaryInput{StreamName: &stream})
	if err != nil {
		t.Fatalf("DescribeStreamSummary: %v", err)
	}
	return aws.ToString(out.StreamDescriptionSummary.StreamARN)
}

// activeConsumer registers a consumer and advances the clock until it is
// ACTIVE.
func activeConsumer(t *testing.T, client *kinesis.Client, clock *testenv.Clock, arn, name string) string {
	t.Helper()
	out, err := client.RegisterStreamConsumer(ctxT(t), &kinesis.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: &name})
	if err != nil {
		t.Fatalf("RegisterStreamConsumer: %v", err)
	}
	clock.Advance(time.Second)
	return aws.ToString(out.Consumer.ConsumerARN)
}

func TestFanOutConsumerRegistry(t *testing.T) {
	_, client, clock := fanOutProxy(t, proxy.FanOutConfig{ConsumerDelay: time.Second})
	ctx := ctxT(t)
	stream := testenv.CreateStream(t, client, 1)
	arn := streamARN(t, client, stream)

	reg, err := client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String("app")})
	if err != nil {
		t.Fatalf("RegisterStreamConsumer: %v", err)
	}
	c := reg.Consumer
	want := regexp.MustCompile("^" + regexp.QuoteMeta(arn) + `/consumer/app:1700000000$`)
	if !want.MatchString(aws.ToString(c.ConsumerARN)) {
		t.Errorf("consumer ARN %q, want %s", aws.ToString(c.ConsumerARN), want)
	}
	if c.ConsumerStatus != types.ConsumerStatusCreating {
		t.Errorf("new consumer is %s, want CREATING", c.ConsumerStatus)
	}
	var inUse *types.ResourceInUseException
	if _, err := client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String("app")}); !errors.As(err, &inUse) {
		t.Errorf("registering the same name again: %v, want ResourceInUseException", err)
	}
	clock.Advance(time.Second)
	d, err := client.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: c.ConsumerARN})
	if err != nil {
		t.Fatalf("DescribeStreamConsumer by ARN: %v", err)
	}
	if d.ConsumerDescription.ConsumerStatus != types.ConsumerStatusActive || aws.ToString(d.ConsumerDescription.StreamARN) != arn {
		t.Errorf("after the delay: %s of %s, want ACTIVE of %s", d.ConsumerDescription.ConsumerStatus, aws.ToString(d.ConsumerDescription.StreamARN), arn)
	}
	if d, err := client.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String("app")}); err != nil || aws.ToString(d.ConsumerDescription.ConsumerARN) != aws.ToString(c.ConsumerARN) {
		t.Errorf("DescribeStreamConsumer by name: %v", err)
	}

	// Five at most CREATING at once, 20 in all.
	for i := 1; i < 20; i++ {
		if i%5 == 0 {
			clock.Advance(time.Second)
		}
		if _, err := client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String(fmt.Sprintf("c%d", i))}); err != nil {
			t.Fatalf("consumer %d: %v", i, err)
		}
	}
	var limit *types.LimitExceededException
	if _, err := client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String("c20")}); !errors.As(err, &limit) {
		t.Errorf("21st consumer: %v, want LimitExceededException", err)
	}
	var names []string
	in := &kinesis.ListStreamConsumersInput{StreamARN: &arn, MaxResults: aws.Int32(7)}
	for page := 0; ; page++ {
		out, err := client.ListStreamConsumers(ctx, in)
		if err != nil {
			t.Fatalf("ListStreamConsumers: %v", err)
		}
		if len(out.Consumers) > 7 {
			t.Fatalf("page of %d consumers, MaxResults 7", len(out.Consumers))
		}
		for _, c := range out.Consumers {
			names = append(names, aws.ToString(c.ConsumerName))
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	if len(names) != 20 || names[0] != "app" || names[19] != "c19" {
		t.Errorf("listed %d consumers %v, want app, c1 ... c19", len(names), names)
	}

	if _, err := client.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{ConsumerARN: c.ConsumerARN}); err != nil {
		t.Fatalf("DeregisterStreamConsumer: %v", err)
	}
	if d, err := client.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: c.ConsumerARN}); err != nil || d.ConsumerDescription.ConsumerStatus != types.ConsumerStatusDeleting {
		t.Errorf("just deregistered: %v, want DELETING", err)
	}
	clock.Advance(time.Second)
	var notFound *types.ResourceNotFoundException
	if _, err := client.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: c.ConsumerARN}); !errors.As(err, &notFound) {
		t.Errorf("deregistered after the delay: %v, want ResourceNotFoundException", err)
	}
	if _, err := client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String("c20")}); err != nil {
		t.Errorf("20th consumer once one is gone: %v", err)
	}
	if _, err := client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(arn + "-missing"), ConsumerName: aws.String("x")}); !errors.As(err, &notFound) {
		t.Errorf("consumer of a missing stream: %v, want ResourceNotFoundException", err)
	}
}

// subscription reads one SubscribeToShard stream in the background.
type subscription struct {
	stream *kinesis.SubscribeToShardEventStream
	events chan types.SubscribeToShardEvent
	done   chan struct{}
	err    error // set before done is closed
}

func subscribe(t *testing.T, client *kinesis.Client, consumerARN, shard string, pos types.StartingPosition) (*subscription, error) {
	t.Helper()
	// A protocol value per subscription: the SDK's shared one races
	// between concurrent event streams (aws/smithy-go issue 714).
	out, err := client.SubscribeToShard(ctxT(t), &kinesis.SubscribeToShardInput{ConsumerARN: &consumerARN, ShardId: &shard, StartingPosition: &pos},
		func(o *kinesis.Options) { o.Protocol = awsjson.New11(schemas.Kinesis_20131202) })
	if err != nil {
		return nil, err
	}
	s := &subscription{stream: out.GetStream(), events: make(chan types.SubscribeToShardEvent, 1000), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for ev := range s.stream.Events() {
			if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok {
				s.events <- e.Value
			}
		}
		s.err = s.stream.Err()
	}()
	t.Cleanup(func() {
		_ = s.stream.Close()
		<-s.done
	})
	return s, nil
}

// records reads events until n records have arrived and returns their data
// and the last event.
func (s *subscription) records(t *testing.T, n int) ([]string, types.SubscribeToShardEvent) {
	t.Helper()
	var got []string
	var last types.SubscribeToShardEvent
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case ev := <-s.events:
			for _, r := range ev.Records {
				got = append(got, string(r.Data))
			}
			last = ev
		case <-s.done:
			t.Fatalf("stream ended after %d of %d records: %v", len(got), n, s.err)
		case <-deadline:
			t.Fatalf("timed out with %d of %d records", len(got), n)
		}
	}
	return got, last
}

// ended waits for the stream to end and returns its error.
func (s *subscription) ended(t *testing.T) error {
	t.Helper()
	select {
	case <-s.done:
		return s.err
	case <-time.After(20 * time.Second):
		t.Fatal("stream did not end within 20s")
		return nil
	}
}

func putN(t *testing.T, client *kinesis.Client, stream string, from, n int) []string {
	t.Helper()
	var out []string
	for i := from; i < from+n; i++ {
		d := fmt.Sprintf("r%03d", i)
		if _, err := client.PutRecord(ctxT(t), &kinesis.PutRecordInput{StreamName: &stream, PartitionKey: aws.String("k"), Data: []byte(d)}); err != nil {
			t.Fatalf("PutRecord: %v", err)
		}
		out = append(out, d)
	}
	return out
}

var trimHorizon = types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}

// A subscription over HTTP/2 gets the initial response (the SDK fails the
// call without it) and the shard's records in order, old and new, with the
// last one's sequence number as the continuation.
func TestSubscribeToShardOverHTTP2(t *testing.T) {
	p, client, clock := fanOutProxy(t, proxy.FanOutConfig{})
	stream := testenv.CreateStream(t, client, 1)
	want := putN(t, client, stream, 0, 5)
	consumer := activeConsumer(t, client, clock, streamARN(t, client, stream), "app")

	s, err := subscribe(t, client, consumer, shardID(0), trimHorizon)
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	got, _ := s.records(t, 5)
	want = append(want, putN(t, client, stream, 5, 3)...)
	more, last := s.records(t, 3)
	got = append(got, more...)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("records %v, want %v", got, want)
	}
	if seq := aws.ToString(last.Records[len(last.Records)-1].SequenceNumber); aws.ToString(last.ContinuationSequenceNumber) != seq {
		t.Errorf("continuation %s, want the last record's %s", aws.ToString(last.ContinuationSequenceNumber), seq)
	}
	if last.MillisBehindLatest == nil {
		t.Error("no MillisBehindLatest")
	}

	// Resuming after the continuation reads nothing twice.
	clock.Advance(6 * time.Second)
	s2, err := subscribe(t, client, consumer, shardID(0), types.StartingPosition{
		Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: last.ContinuationSequenceNumber})
	if err != nil {
		t.Fatalf("SubscribeToShard after the continuation: %v", err)
	}
	putN(t, client, stream, 8, 1)
	if got, _ := s2.records(t, 1); got[0] != "r008" {
		t.Errorf("resumed subscription's first record %s, want r008", got[0])
	}
	if st := p.FanOutStats(); st.Subscriptions != 2 || st.TakenOver != 1 {
		t.Errorf("stats %+v, want 2 subscriptions, 1 taken over", st)
	}
}

// AWS's rules: one call per second per consumer and shard; a second call
// within 5 s of a successful one fails with ResourceInUseException, after
// 5 s it takes over and the old stream fails with ResourceInUseException;
// a subscription ends after 5 minutes, without an error.
func TestSubscribeToShardRules(t *testing.T) {
	p, client, clock := fanOutProxy(t, proxy.FanOutConfig{})
	stream := testenv.CreateStream(t, client, 1)
	arn := streamARN(t, client, stream)
	ctx := ctxT(t)

	var notFound *types.ResourceNotFoundException
	if _, err := subscribe(t, client, arn+"/consumer/nobody:1", shardID(0), trimHorizon); !errors.As(err, &notFound) {
		t.Errorf("unknown consumer: %v, want ResourceNotFoundException", err)
	}
	reg, err := client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String("app")})
	if err != nil {
		t.Fatal(err)
	}
	consumer := aws.ToString(reg.Consumer.ConsumerARN)
	var inUse *types.ResourceInUseException
	if _, err := subscribe(t, client, consumer, shardID(0), trimHorizon); !errors.As(err, &inUse) {
		t.Errorf("CREATING consumer: %v, want ResourceInUseException", err)
	}
	clock.Advance(time.Second)

	first, err := subscribe(t, client, consumer, shardID(0), trimHorizon)
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	var limit *types.LimitExceededException
	if _, err := subscribe(t, client, consumer, shardID(0), trimHorizon); !errors.As(err, &limit) {
		t.Errorf("second call in the same second: %v, want LimitExceededException", err)
	}
	clock.Advance(4 * time.Second)
	if _, err := subscribe(t, client, consumer, shardID(0), trimHorizon); !errors.As(err, &inUse) {
		t.Errorf("second call 4 s later: %v, want ResourceInUseException", err)
	}
	clock.Advance(time.Second)
	second, err := subscribe(t, client, consumer, shardID(0), trimHorizon)
	if err != nil {
		t.Fatalf("take-over 5 s later: %v", err)
	}
	if err := first.ended(t); !errors.As(err, &inUse) {
		t.Errorf("taken-over stream ended with %v, want ResourceInUseException", err)
	}
	putN(t, client, stream, 0, 2)
	second.records(t, 2)
	clock.Advance(proxy.DefaultSubscriptionLifetime)
	if err := second.ended(t); err != nil {
		t.Errorf("stream at its 5 minutes ended with %v, want no error", err)
	}
	if st := p.FanOutStats(); st.Expired != 1 || st.TakenOver != 1 || st.Refused != 4 {
		t.Errorf("stats %+v, want 1 expired, 1 taken over, 4 refused", st)
	}
}

// A closed shard's subscription ends with an event carrying its
// ChildShards, after its records.
func TestSubscribeToShardChildShards(t *testing.T) {
	_, client, clock := fanOutProxy(t, proxy.FanOutConfig{})
	stream := testenv.CreateStream(t, client, 1)
	putN(t, client, stream, 0, 3)
	if _, err := client.SplitShard(ctxT(t), &kinesis.SplitShardInput{StreamName: &stream, ShardToSplit: aws.String(shardID(0)),
		NewStartingHashKey: aws.String("170141183460469231731687303715884105728")}); err != nil {
		t.Fatalf("SplitShard: %v", err)
	}
	if err := testenv.WaitStreamActive(ctxT(t), client, stream); err != nil {
		t.Fatal(err)
	}
	consumer := activeConsumer(t, client, clock, streamARN(t, client, stream), "app")
	s, err := subscribe(t, client, consumer, shardID(0), trimHorizon)
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	// Records and children may come in one event (kinesis-mock returns
	// both from the shard's last GetRecords) or in several.
	var records int
	var children []string
	if err := s.ended(t); err != nil {
		t.Errorf("stream at the shard's end ended with %v", err)
	}
	for len(s.events) > 0 {
		ev := <-s.events
		if len(children) > 0 {
			t.Error("event after the ChildShards event")
		}
		records += len(ev.Records)
		for _, c := range ev.ChildShards {
			children = append(children, aws.ToString(c.ShardId))
		}
	}
	if records != 3 {
		t.Errorf("%d records, want 3", records)
	}
	if strings.Join(children, ",") != shardID(1)+","+shardID(2) {
		t.Errorf("child shards %v, want %s and %s", children, shardID(1), shardID(2))
	}
}

// Injected faults: an InternalFailureException event, and a stream cut
// mid-way.
func TestSubscribeToShardFaults(t *testing.T) {
	p, client, clock := fanOutProxy(t, proxy.FanOutConfig{})
	stream := testenv.CreateStream(t, client, 1)
	putN(t, client, stream, 0, 2)
	consumer := activeConsumer(t, client, clock, streamARN(t, client, stream), "app")

	if err := p.SetFanOutFaults(proxy.FanOutFaults{InternalFailure: 1}); err != nil {
		t.Fatal(err)
	}
	s, err := subscribe(t, client, consumer, shardID(0), trimHorizon)
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	var internal *types.InternalFailureException
	if err := s.ended(t); !errors.As(err, &internal) {
		t.Errorf("stream ended with %v, want InternalFailureException", err)
	}

	if err := p.SetFanOutFaults(proxy.FanOutFaults{Cut: 1}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	s, err = subscribe(t, client, consumer, shardID(0), trimHorizon)
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	if err := s.ended(t); err == nil || errors.As(err, &internal) {
		t.Errorf("cut stream ended with %v, want a read error", err)
	}
	if st := p.FanOutStats(); st.Faults != 2 || st.Events != 0 {
		t.Errorf("stats %+v, want 2 faults and no event", st)
	}
}

// A consumer reads at most BytesPerSecond from a shard: records past the
// credit wait until the proxy's clock has paid the debt back.
func TestSubscribeToShardReadLimit(t *testing.T) {
	_, client, clock := fanOutProxy(t, proxy.FanOutConfig{BytesPerSecond: 1000})
	stream := testenv.CreateStream(t, client, 1)
	consumer := activeConsumer(t, client, clock, streamARN(t, client, stream), "app")
	big := strings.Repeat("x", 1000)
	for i := 0; i < 3; i++ {
		if _, err := client.PutRecord(ctxT(t), &kinesis.PutRecordInput{StreamName: &stream, PartitionKey: aws.String("k"), Data: []byte(big)}); err != nil {
			t.Fatal(err)
		}
	}
	s, err := subscribe(t, client, consumer, shardID(0), trimHorizon)
	if err != nil {
		t.Fatalf("SubscribeToShard: %v", err)
	}
	s.records(t, 3) // one event from a full bucket, leaving 2 s of debt
	putN(t, client, stream, 0, 1)
	// The proxy polls every 50 ms: 20 polls without the record.
	if wait.Until(time.Second, func() bool { return len(s.events) > 0 }) {
		t.Fatal("record delivered while the consumer is in debt")
	}
	clock.Advance(2100 * time.Millisecond)
	if got, _ := s.records(t, 1); got[0] != "r000" {
		t.Errorf("record after the debt: %s, want r000", got[0])
	}
}

// Before a subscription's first record, its continuation is one resuming
// after which reads what the subscription would have: for LATEST, the last
// record's sequence number before it.
func TestSubscribeToShardContinuationBeforeFirstRecord(t *testing.T) {
	_, client, clock := fanOutProxy(t, proxy.FanOutConfig{})
	stream := testenv.CreateStream(t, client, 1)
	consumer := activeConsumer(t, client, clock, streamARN(t, client, stream), "app")
	var seqs []string
	for i := 0; i < 3; i++ {
		out, err := client.PutRecord(ctxT(t), &kinesis.PutRecordInput{StreamName: &stream, PartitionKey: aws.String("k"), Data: []byte{byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	for _, tc := range []struct {
		pos  types.StartingPosition
		want string
	}{
		{types.StartingPosition{Type: types.ShardIteratorTypeLatest}, seqs[2]},
		{types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: &seqs[2]}, seqs[2]},
	} {
		clock.Advance(6 * time.Second)
		s, err := subscribe(t, client, consumer, shardID(0), tc.pos)
		if err != nil {
			t.Fatalf("SubscribeToShard %s: %v", tc.pos.Type, err)
		}
		select {
		case ev := <-s.events:
			if len(ev.Records) != 0 || aws.ToString(ev.ContinuationSequenceNumber) != tc.want {
				t.Errorf("%s: first event has %d records and continuation %s, want none and %s",
					tc.pos.Type, len(ev.Records), aws.ToString(ev.ContinuationSequenceNumber), tc.want)
			}
		case <-s.done:
			t.Fatalf("%s: stream ended: %v", tc.pos.Type, s.err)
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no event within 10s", tc.pos.Type)
		}
	}
}
