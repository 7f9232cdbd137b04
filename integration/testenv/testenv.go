// Package testenv connects tests to Kinesis and DynamoDB endpoints: the local
// emulators that `make test` starts, LocalStack, or anything else named by the
// standard AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_KINESIS and
// AWS_ENDPOINT_URL_DYNAMODB variables.
//
// Every test that talks to AWS goes through this package. It builds clients
// (with dummy credentials when the endpoint is local), creates a uniquely named
// stream or table per test, waits until it is ACTIVE, and deletes it when the
// test ends. When no endpoint is configured the test is skipped with a hint on
// how to start the emulators, unless the CI variable is set: then it fails, so
// that a CI run can never pass by skipping its integration tests.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// ReadyTimeout bounds every wait for a stream or table to become ACTIVE or
// to be deleted.
const ReadyTimeout = 60 * time.Second

const startHint = "no AWS endpoint configured: run `make test`, or start the emulators with\n" +
	"  export $(integration/emulators/run start)\n" +
	"(stop them with `integration/emulators/run stop`), or point AWS_ENDPOINT_URL at LocalStack"

// Endpoints are the service endpoints the tests talk to.
type Endpoints struct {
	Kinesis  string
	DynamoDB string
}

// LookupEndpoints reads the standard endpoint variables. A service-specific
// variable wins over AWS_ENDPOINT_URL. An empty field means not configured.
func LookupEndpoints() Endpoints {
	general := os.Getenv("AWS_ENDPOINT_URL")
	pick := func(name string) string {
		if v := os.Getenv(name); v != "" {
			return v
		}
		return general
	}
	return Endpoints{Kinesis: pick("AWS_ENDPOINT_URL_KINESIS"), DynamoDB: pick("AWS_ENDPOINT_URL_DYNAMODB")}
}

// Require returns the configured endpoints, or skips the test (fails it when
// the CI variable is set) if either service has none.
func Require(t testing.TB) Endpoints {
	t.Helper()
	ep := LookupEndpoints()
	var missing []string
	if ep.Kinesis == "" {
		missing = append(missing, "Kinesis")
	}
	if ep.DynamoDB == "" {
		missing = append(missing, "DynamoDB")
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("%s (missing: %s)", startHint, strings.Join(missing, ", "))
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but %s", msg)
		}
		t.Skip(msg)
	}
	return ep
}

// IsLocal reports whether endpoint names a loopback host, where dummy
// credentials are used instead of the standard credential chain.
func IsLocal(endpoint string) bool {
	u, err := url.Parse(endpoint)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AWSConfig returns an aws.Config for the given endpoint: the standard config
// chain, with region us-east-1 when none is set and static dummy credentials
// when the endpoint is local.
func AWSConfig(t testing.TB, endpoint string) aws.Config {
	t.Helper()
	opts := []func(*config.LoadOptions) error{}
	if os.Getenv("AWS_REGION") == "" && os.Getenv("AWS_DEFAULT_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	if IsLocal(endpoint) {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		t.Fatalf("testenv: load AWS config: %v", err)
	}
	return cfg
}

// KinesisClient returns a Kinesis client for the configured endpoint.
func KinesisClient(t testing.TB) *kinesis.Client {
	t.Helper()
	return KinesisClientAt(t, Require(t).Kinesis)
}

// KinesisClientAt returns a Kinesis client for endpoint, such as a fault
// proxy in front of the emulator.
func KinesisClientAt(t testing.TB, endpoint string) *kinesis.Client {
	t.Helper()
	return kinesis.NewFromConfig(AWSConfig(t, endpoint), func(o *kinesis.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

// DynamoDBClient returns a DynamoDB client for the configured endpoint.
func DynamoDBClient(t testing.TB) *dynamodb.Client {
	t.Helper()
	return DynamoDBClientAt(t, Require(t).DynamoDB)
}

// DynamoDBClientAt returns a DynamoDB client for endpoint.
func DynamoDBClientAt(t testing.TB, endpoint string) *dynamodb.Client {
	t.Helper()
	return dynamodb.NewFromConfig(AWSConfig(t, endpoint), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
	})
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9_.-]+`)

// UniqueName returns a name for a stream or table that no other test (or
// earlier run) uses: the test's name, cleaned and shortened, plus a random
// suffix. It is at most 100 characters and matches [a-zA-Z0-9_.-]+.
func UniqueName(t testing.TB) string {
	t.Helper()
	base := unsafeChars.ReplaceAllString(t.Name(), "-")
	if len(base) > 60 {
		base = base[len(base)-60:]
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: random name: %v", err)
	}
	return strings.Trim(base, "-.") + "-" + hex.EncodeToString(b[:])
}

// NewStream creates a stream with the given number of shards on the
// configured Kinesis endpoint, waits until it is ACTIVE, and deletes it when
// the test ends. It returns a client for the endpoint and the stream name.
func NewStream(t testing.TB, shards int) (*kinesis.Client, string) {
	t.Helper()
	client := KinesisClient(t)
	return client, CreateStream(t, client, shards)
}

// CreateStream is NewStream with a client of the caller's choosing.
func CreateStream(t testing.TB, client *kinesis.Client, shards int) string {
	t.Helper()
	name := UniqueName(t)
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	if _, err := client.CreateStream(ctx, &kinesis.CreateStreamInput{
		StreamName: aws.String(name),
		ShardCount: aws.Int32(int32(shards)),
	}); err != nil {
		t.Fatalf("testenv: create stream %s: %v", name, err)
	}
	t.Cleanup(func() { deleteStream(t, client, name) })
	if err := WaitStreamActive(ctx, client, name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return name
}

// WaitStreamActive polls DescribeStreamSummary until the stream is ACTIVE
// (for example after a split or merge) or ctx ends.
func WaitStreamActive(ctx context.Context, client *kinesis.Client, name string) error {
	return poll(ctx, func() (bool, error) {
		out, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err != nil {
			var nf *kintypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				return false, nil
			}
			return false, err
		}
		return out.StreamDescriptionSummary.StreamStatus == kintypes.StreamStatusActive, nil
	}, "stream "+name+" to become ACTIVE")
}

func deleteStream(t testing.TB, client *kinesis.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	_, err := client.DeleteStream(ctx, &kinesis.DeleteStreamInput{
		StreamName:              aws.String(name),
		EnforceConsumerDeletion: aws.Bool(true),
	})
	var nf *kintypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		t.Errorf("testenv: delete stream %s: %v", name, err)
	}
}

// NewTableName returns a unique table name on the configured DynamoDB
// endpoint, without creating the table (for code under test that creates it
// itself). Whatever table by that name exists when the test ends is deleted.
func NewTableName(t testing.TB) (*dynamodb.Client, string) {
	t.Helper()
	client := DynamoDBClient(t)
	name := UniqueName(t)
	t.Cleanup(func() {
		deleteTable(t, client, name)
		// The coordinator state and worker metrics tables a lease store
		// makes next to its lease table.
		deleteTable(t, client, name+"-CoordinatorState")
		deleteTable(t, client, name+"-WorkerMetricStats")
	})
	return client, name
}

// NewLeaseTable creates a table with the lease table's key schema (hash key
// leaseKey, a string; on-demand capacity) and nothing else, as the Java KCL
// 2.x makes it (no index on leaseOwner), waits until it is ACTIVE, and
// deletes it when the test ends (with the tables a lease store adds next
// to it).
func NewLeaseTable(t testing.TB) (*dynamodb.Client, string) {
	t.Helper()
	client, name := NewTableName(t)
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	if _, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("leaseKey"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("leaseKey"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}); err != nil {
		t.Fatalf("testenv: create table %s: %v", name, err)
	}
	if err := WaitTableActive(ctx, client, name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return client, name
}

// WaitTableActive polls DescribeTable until the table is ACTIVE or ctx ends.
func WaitTableActive(ctx context.Context, client *dynamodb.Client, name string) error {
	return poll(ctx, func() (bool, error) {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			var nf *ddbtypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				return false, nil
			}
			return false, err
		}
		return out.Table.TableStatus == ddbtypes.TableStatusActive, nil
	}, "table "+name+" to become ACTIVE")
}

func deleteTable(t testing.TB, client *dynamodb.Client, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	// A table still CREATING cannot be deleted: wait until it is ACTIVE (or
	// turns out never to have been created).
	exists := false
	err := poll(ctx, func() (bool, error) {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			var nf *ddbtypes.ResourceNotFoundException
			if errors.As(err, &nf) {
				return true, nil
			}
			return false, err
		}
		exists = true
		return out.Table.TableStatus == ddbtypes.TableStatusActive, nil
	}, "table "+name+" to settle before deletion")
	if err == nil && exists {
		_, err = client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	}
	var nf *ddbtypes.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		t.Errorf("testenv: delete table %s: %v", name, err)
	}
}

// poll calls cond every 100 ms until it reports true, fails, or ctx ends.
func poll(ctx context.Context, cond func() (bool, error), what string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-tick.C:
		}
	}
}
