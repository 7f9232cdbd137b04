package agent_test

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/firehose"

	"github.com/kinesisgo/kinesis/agent"
	"github.com/kinesisgo/kinesis/integration/proxy"
)

// A FirehoseSink sending to the test bench's Firehose emulation. In the
// daemon, FirehoseSinkConfig makes the configuration from a deliveryStream
// flow.
func ExampleNewFirehoseSink() {
	dir, _ := os.MkdirTemp("", "firehose")
	defer os.RemoveAll(dir)
	px, err := proxy.Start(proxy.Config{KinesisURL: "http://127.0.0.1:1", Firehose: &proxy.FirehoseConfig{Dir: dir}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer px.Close()
	client := firehose.New(firehose.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(px.URL()), Retryer: aws.NopRetryer{},
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})

	s, err := agent.NewFirehoseSink(agent.FirehoseConfig{DeliveryStream: "logs", Firehose: client})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	done := make(chan error, 2)
	for _, line := range []string{"first line\n", "a line without its newline"} {
		_ = s.Put(ctx, agent.Record{Data: []byte(line)}, func(err error) { done <- err })
	}
	_ = s.Flush(ctx)
	fmt.Println(<-done, <-done)
	_ = s.Close(ctx)

	data, _ := px.FirehoseData("logs")
	fmt.Printf("%s", data)
	// Output:
	// <nil> <nil>
	// first line
	// a line without its newline
}
