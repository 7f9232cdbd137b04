package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/kinesisgo/kinesis/internal/backoff"
	"github.com/spf13/cobra"
)

// consumerInfo is the JSON form of one registered consumer.
type consumerInfo struct {
	Name    string     `json:"name"`
	ARN     string     `json:"arn"`
	Status  string     `json:"status"`
	Created *time.Time `json:"created,omitempty"`
}

func consumerInfoFrom(c kintypes.Consumer) consumerInfo {
	return consumerInfo{Name: aws.ToString(c.ConsumerName), ARN: aws.ToString(c.ConsumerARN),
		Status: string(c.ConsumerStatus), Created: c.ConsumerCreationTimestamp}
}

func (a *app) consumersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "consumers",
		Short: "List, register and deregister a stream's enhanced fan-out consumers",
		Long: `List, register and deregister the enhanced fan-out consumers of a stream. Each
registered consumer reads every shard at up to 2 MiB/s of its own with
SubscribeToShard (see tail --consumer); a stream has at most 20.`,
	}
	cmd.AddCommand(a.consumersListCommand(), a.consumersRegisterCommand(), a.consumersDeregisterCommand())
	return cmd
}

func (a *app) consumersListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list STREAM",
		Short: "List the stream's consumers: name, status, creation time and ARN",
		Args:  args("STREAM"),
		RunE: a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			client, arn, err := a.streamARN(ctx, argv[0])
			if err != nil {
				return err
			}
			list := []consumerInfo{}
			p := kinesis.NewListStreamConsumersPaginator(client, &kinesis.ListStreamConsumersInput{StreamARN: &arn})
			for p.HasMorePages() {
				out, err := p.NextPage(ctx)
				if err != nil {
					return streamErr(argv[0], err)
				}
				for _, c := range out.Consumers {
					list = append(list, consumerInfoFrom(c))
				}
			}
			return a.emit(list, func(w io.Writer) error {
				t := newTable(w, "NAME", "STATUS", "CREATED", "ARN")
				for _, c := range list {
					t.row(c.Name, c.Status, formatTime(c.Created), c.ARN)
				}
				return t.flush()
			})
		}),
	}
}

func (a *app) consumersRegisterCommand() *cobra.Command {
	var noWait bool
	cmd := &cobra.Command{
		Use:   "register STREAM NAME",
		Short: "Register a consumer and wait until it is ACTIVE",
		Long: `Register a consumer named NAME with the stream and wait until it is ACTIVE
(at most 5 minutes), unless --no-wait is given. A name already registered
exits 6, as does a stream with 20 consumers (or 5 being created).`,
		Args: args("STREAM", "NAME"),
	}
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once registered (CREATING), without waiting until ACTIVE")
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		ctx := cmd.Context()
		client, arn, err := a.streamARN(ctx, argv[0])
		if err != nil {
			return err
		}
		out, err := client.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String(argv[1])})
		if err != nil {
			var inUse *kintypes.ResourceInUseException
			if errors.As(err, &inUse) {
				return fail(exitConflict, err, "consumer %q of stream %q already exists; list them with: kinesisctl consumers list %s", argv[1], argv[0], argv[0])
			}
			return streamErr(argv[0], err)
		}
		c := consumerInfoFrom(*out.Consumer)
		if !noWait {
			if c, err = waitConsumerActive(ctx, client, c.ARN); err != nil {
				return err
			}
		}
		return a.emit(c, func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "registered %s (%s): %s\n", c.Name, c.Status, c.ARN)
			return err
		})
	})
	return cmd
}

func (a *app) consumersDeregisterCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "deregister STREAM NAME",
		Short: "Deregister a consumer: its subscriptions end",
		Args:  args("STREAM", "NAME"),
		RunE: a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
			ctx := cmd.Context()
			client, arn, err := a.streamARN(ctx, argv[0])
			if err != nil {
				return err
			}
			_, err = client.DeregisterStreamConsumer(ctx, &kinesis.DeregisterStreamConsumerInput{StreamARN: &arn, ConsumerName: aws.String(argv[1])})
			if err != nil {
				return consumerErr(argv[0], argv[1], err)
			}
			return a.emit(map[string]string{"deregistered": argv[1]}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "deregistered %s\n", argv[1])
				return err
			})
		}),
	}
}

// streamARN returns the Kinesis client and the ARN of the named stream.
func (a *app) streamARN(ctx context.Context, stream string) (*kinesis.Client, string, error) {
	client, err := a.kinesisClient(ctx)
	if err != nil {
		return nil, "", err
	}
	s, err := describeStream(ctx, client, stream)
	if err != nil {
		return nil, "", err
	}
	return client, aws.ToString(s.StreamARN), nil
}

// consumerErr names the consumer when it is not found.
func consumerErr(stream, name string, err error) error {
	var nf *kintypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fail(exitNotFound, err, "consumer %q of stream %q not found; list them with: kinesisctl consumers list %s", name, stream, stream)
	}
	return err
}

// consumerPoll paces waitConsumerActive.
var consumerPoll = backoff.Policy{Base: 100 * time.Millisecond, Max: 2 * time.Second}

// waitConsumerActive polls the consumer until it is ACTIVE, for at most
// waitTimeout.
func waitConsumerActive(ctx context.Context, client *kinesis.Client, arn string) (consumerInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		out, err := client.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{ConsumerARN: &arn})
		if err != nil {
			return consumerInfo{}, err
		}
		d := out.ConsumerDescription
		if d.ConsumerStatus == kintypes.ConsumerStatusActive {
			return consumerInfo{Name: aws.ToString(d.ConsumerName), ARN: arn, Status: string(d.ConsumerStatus),
				Created: d.ConsumerCreationTimestamp}, nil
		}
		if err := backoff.Sleep(ctx, consumerPoll.Delay(attempt)); err != nil {
			if ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
				return consumerInfo{}, fail(exitConflict, err, "consumer %s still %s after %v", arn, d.ConsumerStatus, waitTimeout)
			}
			return consumerInfo{}, err
		}
	}
}
