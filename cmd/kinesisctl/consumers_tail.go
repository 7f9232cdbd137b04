package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/schemas"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
)

// maxSubscribeFailures is how many failed subscriptions in a row (with
// nothing read between them) tail --consumer accepts for a shard.
const maxSubscribeFailures = 10

// consumerARN returns the ARN of the stream's consumer named name, which
// must be ACTIVE.
func consumerARN(ctx context.Context, client *kinesis.Client, stream, name string) (string, error) {
	s, err := describeStream(ctx, client, stream)
	if err != nil {
		return "", err
	}
	out, err := client.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: s.StreamARN, ConsumerName: &name})
	if err != nil {
		return "", consumerErr(stream, name, err)
	}
	d := out.ConsumerDescription
	if d.ConsumerStatus != kintypes.ConsumerStatusActive {
		return "", fail(exitConflict, nil, "consumer %q of stream %q is %s, not ACTIVE", name, stream, d.ConsumerStatus)
	}
	return aws.ToString(d.ConsumerARN), nil
}

// subscribeShard is readShard through enhanced fan-out: SubscribeToShard
// with t.consumerARN from pos, again from the last continuation sequence
// number whenever a subscription ends (after 5 minutes, or cut), until the
// shard's end (an event with ChildShards) or, without --follow, for a shard
// that was open when tail started, its tip.
func (t *tailer) subscribeShard(ctx context.Context, id string, pos startPosition, wasClosed bool) (shardOutcome, error) {
	o := shardOutcome{id: id}
	var cont string // the last event's continuation sequence number
	failures := 0
	for {
		in := &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(t.consumerARN), ShardId: aws.String(id),
			StartingPosition: &kintypes.StartingPosition{Type: pos.kind}}
		switch {
		case cont != "":
			in.StartingPosition = &kintypes.StartingPosition{Type: kintypes.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(cont)}
		case pos.kind == kintypes.ShardIteratorTypeAtTimestamp:
			in.StartingPosition.Timestamp = aws.Time(pos.at)
		}
		out, err := t.client.SubscribeToShard(ctx, in, ownProtocol)
		var done bool
		if err == nil {
			var read bool
			done, read, err = t.readEvents(out.GetStream(), id, &cont, wasClosed, &o)
			if read {
				failures = 0
			}
		}
		switch {
		case done:
			return o, nil
		case errors.Is(err, errMaxReached) || ctx.Err() != nil:
			return o, errors.Join(err, ctx.Err())
		case err == nil:
			continue // the subscription's time ran out: renew it
		case !resubscribable(err):
			return o, fmt.Errorf("subscribing to shard %s: %w", id, streamErr(t.stream, err))
		}
		failures++
		if failures > maxSubscribeFailures {
			return o, fmt.Errorf("subscribing to shard %s: %d failures in a row, the last: %w", id, failures, err)
		}
		if err := backoff.Sleep(ctx, throttledBackoff.Delay(failures)); err != nil {
			return o, err
		}
	}
}

// ownProtocol gives one SubscribeToShard call a protocol of its own: the
// SDK's protocol value keeps the event-stream decoder's state, shared by
// every stream of a client, so that concurrent subscriptions race on it
// (aws/smithy-go issue 714).
func ownProtocol(o *kinesis.Options) { o.Protocol = awsjson.New11(schemas.Kinesis_20131202) }

// resubscribable reports whether a subscription that failed with err may be
// tried again: throttling, service faults, cut streams, and
// ResourceInUseException (a subscription of the same consumer and shard
// made within the last 5 s, or one that took this one over).
func resubscribable(err error) bool {
	var inUse *kintypes.ResourceInUseException
	return errors.As(err, &inUse) || awserr.IsRetryable(err)
}

// readEvents prints the records of one subscription's events. done is set
// at the shard's end (o then holds its children) or its tip; read when an
// event came.
func (t *tailer) readEvents(es *kinesis.SubscribeToShardEventStream, id string, cont *string, wasClosed bool, o *shardOutcome) (done, read bool, err error) {
	defer es.Close()
	for ev := range es.Events() {
		e, ok := ev.(*kintypes.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !ok {
			continue
		}
		read = true
		if err := t.print(id, e.Value.Records); err != nil {
			return false, read, err
		}
		if c := aws.ToString(e.Value.ContinuationSequenceNumber); c != "" {
			*cont = c
		}
		if len(e.Value.ChildShards) > 0 {
			o.ended, o.children = true, e.Value.ChildShards
			return true, read, nil
		}
		if len(e.Value.Records) == 0 && !wasClosed && !t.follow && aws.ToInt64(e.Value.MillisBehindLatest) == 0 {
			return true, read, nil // at the tip
		}
	}
	return false, read, es.Err()
}
