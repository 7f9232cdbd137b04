package awserr

import (
	"context"
	"errors"
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
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// responseError is an HTTP response error with the given status, as the
// SDK wraps the errors of a call that got (or did not get) a response.
func responseError(status int, err error) error {
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}
}

func apiError(code string, fault smithy.ErrorFault) error {
	return &smithy.GenericAPIError{Code: code, Message: "injected", Fault: fault}
}

func TestClassify(t *testing.T) {
	cut := &smithy.DeserializationError{Err: io.ErrUnexpectedEOF}
	for _, c := range []struct {
		name string
		err  error
		want Class
	}{
		{"nil", nil, Fatal},
		{"canceled", context.Canceled, Fatal},
		{"canceled, wrapped", fmt.Errorf("call: %w", context.Canceled), Fatal},
		{"canceled in a response error", responseError(0, context.Canceled), Fatal},
		{"deadline exceeded", context.DeadlineExceeded, Retryable},
		{"network error", errors.New("connection reset by peer"), Retryable},

		{"ProvisionedThroughputExceeded", &types.ProvisionedThroughputExceededException{}, Throttling},
		{"LimitExceeded", &types.LimitExceededException{}, Throttling},
		{"KMSThrottling", &types.KMSThrottlingException{}, Throttling},
		{"ThrottlingException", apiError("ThrottlingException", smithy.FaultClient), Throttling},
		{"RequestLimitExceeded", apiError("RequestLimitExceeded", smithy.FaultClient), Throttling},
		{"SlowDown", apiError("SlowDown", smithy.FaultClient), Throttling},
		{"throttling code in a 400", responseError(400, &types.ProvisionedThroughputExceededException{}), Throttling},

		{"InternalFailure", apiError("InternalFailure", smithy.FaultServer), Retryable},
		{"ServiceUnavailable", apiError("ServiceUnavailable", smithy.FaultServer), Retryable},
		{"unknown server fault", apiError("SomethingNew", smithy.FaultServer), Retryable},
		{"ExpiredToken", apiError("ExpiredTokenException", smithy.FaultClient), Retryable},
		{"RequestExpired", apiError("RequestExpired", smithy.FaultClient), Retryable},
		{"RequestTimeout", apiError("RequestTimeoutException", smithy.FaultClient), Retryable},

		{"ResourceNotFound", &types.ResourceNotFoundException{}, Fatal},
		{"InvalidArgument", &types.InvalidArgumentException{}, Fatal},
		{"KMSAccessDenied", &types.KMSAccessDeniedException{}, Fatal},
		{"AccessDenied", apiError("AccessDeniedException", smithy.FaultClient), Fatal},
		{"unknown client fault", apiError("SomethingNew", smithy.FaultClient), Fatal},
		{"unknown fault", apiError("SomethingNew", smithy.FaultUnknown), Fatal},
		{"ValidationException in a 400", responseError(400, apiError("ValidationException", smithy.FaultClient)), Fatal},

		{"status 0 (no response)", responseError(0, errors.New("dial tcp: connection refused")), Retryable},
		{"status 400", responseError(400, errors.New("bad request")), Fatal},
		{"status 403", responseError(403, errors.New("forbidden")), Fatal},
		{"status 408", responseError(408, errors.New("request timeout")), Retryable},
		{"status 429", responseError(429, errors.New("too many requests")), Throttling},
		{"status 429, body cut short", responseError(429, cut), Throttling},
		{"status 429, transient code", responseError(429, apiError("ServiceUnavailable", smithy.FaultServer)), Throttling},
		{"status 500", responseError(500, errors.New("internal")), Retryable},
		{"status 503", responseError(503, errors.New("unavailable")), Retryable},
		{"response cut short", responseError(200, cut), Retryable},
		{"deserialization error", cut, Retryable},
	} {
		got := Classify(c.err)
		if got != c.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
		if IsThrottling(c.err) != (c.want == Throttling) || IsRetryable(c.err) != (c.want != Fatal) || IsFatal(c.err) != (c.err != nil && c.want == Fatal) {
			t.Errorf("%s: IsThrottling %v, IsRetryable %v, IsFatal %v disagree with %v", c.name, IsThrottling(c.err), IsRetryable(c.err), IsFatal(c.err), c.want)
		}
	}
}

// sdkError makes a PutRecords call with a real SDK client without SDK
// retries against handler and returns its error.
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

// Errors as the SDK really returns them: a call that times out or whose
// connection is cut is retryable; the service's own client errors are
// fatal, except those that a later attempt can overcome (throttling,
// expired credentials that the SDK refreshes).
func TestClassifySDKErrors(t *testing.T) {
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
	tooMany := sdkError(t, 5*time.Second, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte("<html>slow down</html>"))
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
		want Class
		kind string
	}{
		{"request timeout", timeout, Retryable, "timeout"},
		{"connection cut", cut, Retryable, "network"},
		{"response cut short", cutBody, Retryable, ""},
		{"429 without an AWS body", tooMany, Throttling, ""},
		{"500 InternalFailure", apiErr(500, "InternalFailure"), Retryable, "InternalFailure"},
		{"503 ServiceUnavailable", apiErr(503, "ServiceUnavailable"), Retryable, "ServiceUnavailable"},
		{"400 ProvisionedThroughputExceeded", apiErr(400, "ProvisionedThroughputExceededException"), Throttling, "ProvisionedThroughputExceededException"},
		{"400 LimitExceeded", apiErr(400, "LimitExceededException"), Throttling, "LimitExceededException"},
		{"400 KMSThrottling", apiErr(400, "KMSThrottlingException"), Throttling, "KMSThrottlingException"},
		{"400 ExpiredToken", apiErr(400, "ExpiredTokenException"), Retryable, "ExpiredTokenException"},
		{"400 ResourceNotFound", apiErr(400, "ResourceNotFoundException"), Fatal, "ResourceNotFoundException"},
		{"400 AccessDenied", apiErr(400, "AccessDeniedException"), Fatal, "AccessDeniedException"},
		{"400 ValidationException", apiErr(400, "ValidationException"), Fatal, "ValidationException"},
		{"400 InvalidArgument", apiErr(400, "InvalidArgumentException"), Fatal, "InvalidArgumentException"},
		{"400 KMSAccessDenied", apiErr(400, "KMSAccessDeniedException"), Fatal, "KMSAccessDeniedException"},
		{"400 KMSDisabled", apiErr(400, "KMSDisabledException"), Fatal, "KMSDisabledException"},
	} {
		if got := Classify(c.err); got != c.want {
			t.Errorf("%s: Classify(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
		if got := Kind(c.err); c.kind != "" && got != c.kind {
			t.Errorf("%s: Kind(%v) = %q, want %q", c.name, c.err, got, c.kind)
		}
	}
}

func TestKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{context.Canceled, "canceled"},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), "timeout"},
		{&types.ProvisionedThroughputExceededException{}, "ProvisionedThroughputExceededException"},
		{responseError(503, errors.New("unavailable")), "http_503"},
		{responseError(0, errors.New("connection refused")), "network"},
		{errors.New("connection reset by peer"), "network"},
	} {
		if got := Kind(c.err); got != c.want {
			t.Errorf("Kind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// The PutRecords entry codes: the API reference names two,
// ProvisionedThroughputExceededException and InternalFailure; only the
// first is the shard's rate.
func TestEntryCodes(t *testing.T) {
	for _, c := range []struct {
		code                  string
		retryable, throttling bool
	}{
		{"ProvisionedThroughputExceededException", true, true},
		{"InternalFailure", true, false},
		{"KMSThrottlingException", true, false},
		{"ServiceUnavailable", true, false},
		{"KMSAccessDeniedException", false, false},
		{"KMSDisabledException", false, false},
		{"InvalidArgumentException", false, false},
		{"", false, false},
	} {
		if got := RetryableEntryCode(c.code); got != c.retryable {
			t.Errorf("RetryableEntryCode(%q) = %v, want %v", c.code, got, c.retryable)
		}
		if got := ThrottlingEntryCode(c.code); got != c.throttling {
			t.Errorf("ThrottlingEntryCode(%q) = %v, want %v", c.code, got, c.throttling)
		}
	}
}
