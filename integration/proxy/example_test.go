package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesisgo/kinesis/integration/proxy"
)

// A proxy in front of the emulators with AWS's per-shard limits, 5 % of
// PutRecords entries failing and a tenth of the lease table's UpdateItem
// calls throttled. In a test, proxy.StartForTest does the same and fills in
// the emulator URLs.
func Example() {
	p, err := proxy.Start(proxy.Config{
		KinesisURL:  "http://127.0.0.1:4568", // kinesis-mock
		DynamoDBURL: "http://127.0.0.1:4569", // dynalite
		Seed:        1,
		Kinesis:     proxy.KinesisFaults{InternalFailure: 0.05},
		DynamoDB:    proxy.DynamoDBFaults{Throttling: 0.1, Operations: []string{"UpdateItem"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	// Clients of either service use the proxy's URL as their endpoint.
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	if err != nil {
		fmt.Println(err)
		return
	}
	client := kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(p.URL()) })
	_ = client // client.PutRecords(...) now meets the limits and faults.

	// Faults can change while the proxy runs, e.g. a burst of 503s.
	if err := p.SetKinesisFaults(proxy.KinesisFaults{Unavailable: 0.5, Latency: 20 * time.Millisecond}); err != nil {
		fmt.Println(err)
		return
	}

	// The counters, also served as JSON at GET /stats.
	resp, err := http.Get(p.URL() + "/stats")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var s proxy.Stats
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("requests %d, records %d, throttled %d\n", s.Requests, s.Records, s.Throttled)
	// Output: requests 0, records 0, throttled 0
}

// The Firehose emulation and the STS stand-in, with the "logs" delivery
// stream writable only with the credentials of one role: what a log
// shipper's test needs to prove it assumed the role.
func ExampleConfig_firehoseAndSTS() {
	dir, _ := os.MkdirTemp("", "firehose")
	defer os.RemoveAll(dir)
	p, err := proxy.Start(proxy.Config{
		KinesisURL: "http://127.0.0.1:4568", // kinesis-mock, for Kinesis calls
		Firehose:   &proxy.FirehoseConfig{Dir: dir, Faults: proxy.FirehoseFaults{RecordFailure: 0.01}},
		STS: &proxy.STSConfig{Roles: map[string]proxy.STSRole{
			"arn:aws:iam::123456789012:role/shipper": {ExternalID: "ext", AccessKeyID: "ASIASHIPPER"},
		}},
		RequireAccessKey: map[string]string{"logs": "ASIASHIPPER"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()
	// Point the client's firehose.endpoint and sts.endpoint at p.URL();
	// the records delivered to "logs" land in p.FirehoseDir("logs").
	fmt.Println(filepath.Base(p.FirehoseDir("logs")), p.AssumeRoleCalls(), p.AccessDenied())
	// Output: logs 0 0
}
