package kcl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/internal/awserr"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/kinesisgo/kinesis/internal/streamref"
)

// ConsumerAPI is the Kinesis calls that register a fan-out consumer;
// *kinesis.Client has them.
type ConsumerAPI interface {
	DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error)
	DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
	RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
}

// ErrConsumerNotActive is wrapped by the error of a consumer that is being
// deleted, which cannot be used or registered again until it is gone.
var ErrConsumerNotActive = errors.New("kcl: stream consumer is not active")

// consumerPoll paces the wait for a consumer to become ACTIVE, which AWS
// says takes a few seconds.
var consumerPoll = backoff.Policy{Base: 200 * time.Millisecond, Max: 2 * time.Second, Min: 100 * time.Millisecond}

// ensureConsumer returns the ARN of the stream's consumer named name,
// registering it if it does not exist, once it is ACTIVE. A consumer
// registered by another worker at the same time is waited for the same
// way. It returns when ctx ends.
func ensureConsumer(ctx context.Context, api ConsumerAPI, stream streamref.Ref, name string) (string, error) {
	streamARN := aws.ToString(stream.ARN())
	if streamARN == "" {
		out, err := api.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: stream.Name()})
		if err != nil {
			return "", fmt.Errorf("kcl: describe stream %s: %w", stream, err)
		}
		streamARN = aws.ToString(out.StreamDescriptionSummary.StreamARN)
	}
	registered := false
	for attempt := 1; ; attempt++ {
		out, err := api.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: &streamARN, ConsumerName: &name})
		var notFound *types.ResourceNotFoundException
		switch {
		case err == nil:
			d := out.ConsumerDescription
			switch d.ConsumerStatus {
			case types.ConsumerStatusActive:
				return aws.ToString(d.ConsumerARN), nil
			case types.ConsumerStatusDeleting:
				return "", fmt.Errorf("%w: %s of %s is DELETING", ErrConsumerNotActive, name, streamARN)
			}
		case errors.As(err, &notFound) && !registered:
			_, err = api.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &streamARN, ConsumerName: &name})
			var inUse *types.ResourceInUseException
			if err != nil && !errors.As(err, &inUse) && !awserr.IsRetryable(err) {
				return "", fmt.Errorf("kcl: register consumer %s of %s: %w", name, streamARN, err)
			}
			registered = err == nil || errors.As(err, &inUse)
		case !awserr.IsRetryable(err) && !errors.As(err, &notFound):
			return "", fmt.Errorf("kcl: describe consumer %s of %s: %w", name, streamARN, err)
		}
		if err := backoff.Sleep(ctx, consumerPoll.Delay(attempt)); err != nil {
			return "", err
		}
	}
}
