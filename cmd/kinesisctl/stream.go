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
	"github.com/spf13/cobra"

	"github.com/kinesisgo/kinesis/internal/backoff"
)

// waitTimeout bounds every wait for a stream to become ACTIVE or go away.
const waitTimeout = 5 * time.Minute

// pollInterval is how often a wait asks for the stream's status.
const pollInterval = 250 * time.Millisecond

// streamInfo is the JSON form of a stream (stream describe, create, list).
type streamInfo struct {
	Name           string     `json:"name"`
	ARN            string     `json:"arn,omitempty"`
	Status         string     `json:"status,omitempty"`
	Mode           string     `json:"mode,omitempty"`
	OpenShards     *int32     `json:"openShards,omitempty"`
	RetentionHours *int32     `json:"retentionHours,omitempty"`
	Encryption     string     `json:"encryption,omitempty"`
	Consumers      *int32     `json:"consumers,omitempty"`
	Created        *time.Time `json:"created,omitempty"`
}

func streamInfoFrom(s *kintypes.StreamDescriptionSummary) streamInfo {
	info := streamInfo{
		Name:           aws.ToString(s.StreamName),
		ARN:            aws.ToString(s.StreamARN),
		Status:         string(s.StreamStatus),
		OpenShards:     s.OpenShardCount,
		RetentionHours: s.RetentionPeriodHours,
		Encryption:     string(s.EncryptionType),
		Consumers:      s.ConsumerCount,
		Created:        s.StreamCreationTimestamp,
	}
	if s.StreamModeDetails != nil {
		info.Mode = string(s.StreamModeDetails.StreamMode)
	}
	return info
}

func (a *app) streamCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stream",
		Short: "Create, describe, list and delete streams",
	}
	cmd.AddCommand(a.streamCreateCommand(), a.streamDescribeCommand(), a.streamListCommand(), a.streamDeleteCommand())
	return cmd
}

func (a *app) streamCreateCommand() *cobra.Command {
	var (
		shards   int32
		onDemand bool
		noWait   bool
	)
	cmd := &cobra.Command{
		Use:   "create STREAM",
		Short: "Create a stream and wait until it is ACTIVE",
		Args:  args("STREAM"),
	}
	cmd.Flags().Int32Var(&shards, "shards", 1, "number of shards (provisioned mode)")
	cmd.Flags().BoolVar(&onDemand, "on-demand", false, "create in on-demand capacity mode (--shards is ignored)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the stream is CREATING instead of waiting until it is ACTIVE")
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		name := argv[0]
		if !onDemand && shards < 1 {
			return usageErr("--shards must be at least 1, got %d", shards)
		}
		ctx := cmd.Context()
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		in := &kinesis.CreateStreamInput{StreamName: aws.String(name)}
		if onDemand {
			in.StreamModeDetails = &kintypes.StreamModeDetails{StreamMode: kintypes.StreamModeOnDemand}
		} else {
			in.ShardCount = aws.Int32(shards)
		}
		if _, err := client.CreateStream(ctx, in); err != nil {
			var inUse *kintypes.ResourceInUseException
			if errors.As(err, &inUse) {
				return fail(exitConflict, err, "stream %q already exists; see it with: kinesisctl stream describe %s", name, name)
			}
			return err
		}
		var sum *kintypes.StreamDescriptionSummary
		if noWait {
			sum, err = describeStream(ctx, client, name)
		} else {
			sum, err = waitActive(ctx, client, name)
		}
		if err != nil {
			return err
		}
		return a.emit(streamInfoFrom(sum), func(w io.Writer) error { return printStream(w, streamInfoFrom(sum)) })
	})
	return cmd
}

func (a *app) streamDescribeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe STREAM",
		Short: "Show a stream's status, mode, shard count and retention",
		Args:  args("STREAM"),
	}
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		ctx := cmd.Context()
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		sum, err := describeStream(ctx, client, argv[0])
		if err != nil {
			return err
		}
		info := streamInfoFrom(sum)
		return a.emit(info, func(w io.Writer) error { return printStream(w, info) })
	})
	return cmd
}

func (a *app) streamListCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the streams in the account and region",
		Args:  args(),
	}
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, _ []string) error {
		ctx := cmd.Context()
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		streams := []streamInfo{}
		p := kinesis.NewListStreamsPaginator(client, &kinesis.ListStreamsInput{})
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			if len(out.StreamSummaries) > 0 {
				for _, s := range out.StreamSummaries {
					info := streamInfo{Name: aws.ToString(s.StreamName), ARN: aws.ToString(s.StreamARN),
						Status: string(s.StreamStatus), Created: s.StreamCreationTimestamp}
					if s.StreamModeDetails != nil {
						info.Mode = string(s.StreamModeDetails.StreamMode)
					}
					streams = append(streams, info)
				}
				continue
			}
			for _, n := range out.StreamNames {
				streams = append(streams, streamInfo{Name: n})
			}
		}
		return a.emit(streams, func(w io.Writer) error {
			summaries := false
			for _, s := range streams {
				summaries = summaries || s.Status != ""
			}
			if !summaries {
				// The endpoint lists names only (older APIs, emulators).
				for _, s := range streams {
					if _, err := fmt.Fprintln(w, s.Name); err != nil {
						return err
					}
				}
				return nil
			}
			t := newTable(w, "STREAM", "STATUS", "MODE", "CREATED")
			for _, s := range streams {
				t.row(s.Name, s.Status, s.Mode, formatTime(s.Created))
			}
			return t.flush()
		})
	})
	return cmd
}

func (a *app) streamDeleteCommand() *cobra.Command {
	var (
		force  bool
		noWait bool
	)
	cmd := &cobra.Command{
		Use:   "delete STREAM",
		Short: "Delete a stream and wait until it is gone",
		Args:  args("STREAM"),
	}
	cmd.Flags().BoolVar(&force, "force", false, "also delete the stream's registered (enhanced fan-out) consumers")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once deletion has started")
	cmd.RunE = a.runE("KINESIS", func(cmd *cobra.Command, argv []string) error {
		name := argv[0]
		ctx := cmd.Context()
		client, err := a.kinesisClient(ctx)
		if err != nil {
			return err
		}
		_, err = client.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(name), EnforceConsumerDeletion: aws.Bool(force)})
		if err != nil {
			return streamErr(name, err)
		}
		if !noWait {
			if err := waitGone(ctx, client, name); err != nil {
				return err
			}
		}
		result := struct {
			Name    string `json:"name"`
			Deleted bool   `json:"deleted"`
		}{name, !noWait}
		return a.emit(result, func(w io.Writer) error {
			if noWait {
				_, err := fmt.Fprintf(w, "stream %s is being deleted\n", name)
				return err
			}
			_, err := fmt.Fprintf(w, "stream %s deleted\n", name)
			return err
		})
	})
	return cmd
}

func printStream(w io.Writer, s streamInfo) error {
	t := newTable(w, "", "")
	t.row("Stream", s.Name)
	t.row("ARN", s.ARN)
	t.row("Status", s.Status)
	t.row("Mode", s.Mode)
	t.row("Open shards", formatInt(s.OpenShards))
	if s.RetentionHours != nil {
		t.row("Retention", formatInt(s.RetentionHours)+" h")
	}
	t.row("Encryption", s.Encryption)
	t.row("Consumers", formatInt(s.Consumers))
	t.row("Created", formatTime(s.Created))
	return t.flushNoHeader()
}

// streamErr turns "stream not found" into an error that names the stream and
// says how to find the right one.
func streamErr(name string, err error) error {
	var nf *kintypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return fail(exitNotFound, err, "stream %q not found; list streams with: kinesisctl stream list (check --region and the endpoint)", name)
	}
	return err
}

func describeStream(ctx context.Context, client *kinesis.Client, name string) (*kintypes.StreamDescriptionSummary, error) {
	out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		return nil, streamErr(name, err)
	}
	return out.StreamDescriptionSummary, nil
}

// waitActive polls the stream until it is ACTIVE, for at most waitTimeout.
func waitActive(ctx context.Context, client *kinesis.Client, name string) (*kintypes.StreamDescriptionSummary, error) {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	for {
		sum, err := describeStream(ctx, client, name)
		var ee *exitError
		switch {
		case err == nil && sum.StreamStatus == kintypes.StreamStatusActive:
			return sum, nil
		case err == nil, errors.As(err, &ee) && ee.code == exitNotFound:
			// Still being created, or not yet visible.
		default:
			return nil, err
		}
		if err := backoff.Sleep(ctx, pollInterval); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return nil, fail(exitConflict, err, "stream %q is not ACTIVE after %v; check it with: kinesisctl stream describe %s", name, waitTimeout, name)
			}
			return nil, err
		}
	}
}

// waitGone polls the stream until it no longer exists.
func waitGone(ctx context.Context, client *kinesis.Client, name string) error {
	ctx, cancel := context.WithTimeout(ctx, waitTimeout)
	defer cancel()
	for {
		_, err := describeStream(ctx, client, name)
		var ee *exitError
		if errors.As(err, &ee) && ee.code == exitNotFound {
			return nil
		}
		if err != nil {
			return err
		}
		if err := backoff.Sleep(ctx, pollInterval); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return fail(exitConflict, err, "stream %q still exists after %v; check it with: kinesisctl stream describe %s", name, waitTimeout, name)
			}
			return err
		}
	}
}
