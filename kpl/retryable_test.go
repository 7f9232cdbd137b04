package kpl

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// sdkError makes a PutRecords call with a real SDK client (no SDK retries,
// as the producer's default client) against handler and returns its error.
func sdkError(t *testing.T, timeout time.Duration, handler http.HandlerFunc) error {
	t.Helper()
	srv := httptest.NewServer(handler)
	defer srv.Close()
	c := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer:      aws.NopRetryer{},
	})
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err := c.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String("s"),
		Records: []types.PutRecordsRequestEntry{{Data: []byte("x"), PartitionKey: aws.String("k")}}})
	if err == nil {
		t.Fatal("PutRecords succeeded")
	}
	return err
}

// Errors as the SDK really returns them: a call that times out (the
// producer's RequestTimeout) or whose connection is cut is retried; the
// service's own client errors are not, except those that a later attempt can
// overcome (throttling, expired credentials that the SDK refreshes).
func TestRetryableErrorsFromSDK(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	timeout := sdkError(t, 100*time.Millisecond, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the request's context ends with the connection only once the body was read
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	cut := sdkError(t, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	cutBody := sdkError(t, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		w.Write([]byte(`{"FailedRecordCount":0,"Rec`))
		w.(http.Flusher).Flush()
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
	})
	apiErr := func(status int, code string) error {
		return sdkError(t, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"__type":%q,"message":"injected"}`, code)
		})
	}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"request timeout", timeout, true},
		{"connection cut", cut, true},
		{"response cut short", cutBody, true},
		{"500 InternalFailure", apiErr(500, "InternalFailure"), true},
		{"503 ServiceUnavailable", apiErr(503, "ServiceUnavailable"), true},
		{"400 ProvisionedThroughputExceeded", apiErr(400, "ProvisionedThroughputExceededException"), true},
		{"400 LimitExceeded", apiErr(400, "LimitExceededException"), true},
		{"400 KMSThrottling", apiErr(400, "KMSThrottlingException"), true},
		{"400 ExpiredToken", apiErr(400, "ExpiredTokenException"), true},
		{"400 ResourceNotFound", apiErr(400, "ResourceNotFoundException"), false},
		{"400 AccessDenied", apiErr(400, "AccessDeniedException"), false},
		{"400 ValidationException", apiErr(400, "ValidationException"), false},
		{"400 InvalidArgument", apiErr(400, "InvalidArgumentException"), false},
		{"400 KMSAccessDenied", apiErr(400, "KMSAccessDeniedException"), false},
		{"400 KMSDisabled", apiErr(400, "KMSDisabledException"), false},
	} {
		if got := retryableError(c.err); got != c.want {
			t.Errorf("%s: retryableError(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}
