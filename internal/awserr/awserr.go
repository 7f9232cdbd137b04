// Package awserr classifies the errors of AWS calls once for every package
// of the module: whether a failed call was refused for going too fast
// (throttling), may succeed if made again (retryable), or will fail the
// same way however often it is made (fatal).
//
// The classification looks at, in order: context cancellation, an HTTP
// status of 429 (Too Many Requests), the smithy API error code, a response
// cut short, the HTTP status, and otherwise treats the error as a network
// or timeout error (retryable).
package awserr

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Class is what a caller may do about a failed call.
type Class int

const (
	// Fatal: making the call again fails the same way (validation, missing
	// resource, access denied, a cancelled context).
	Fatal Class = iota
	// Retryable: a transient failure (server fault, timeout, network error,
	// expired credentials the SDK refreshes); retry with backoff.
	Retryable
	// Throttling: the service refused the call for going too fast; retry
	// with backoff and slow down. Throttling errors are retryable too.
	Throttling
)

func (c Class) String() string {
	switch c {
	case Fatal:
		return "fatal"
	case Retryable:
		return "retryable"
	case Throttling:
		return "throttling"
	}
	return "unknown"
}

// throttlingCodes are the error codes with which AWS services refuse a call
// for its rate: Kinesis (ProvisionedThroughputExceededException,
// LimitExceededException, KMSThrottlingException), DynamoDB
// (ProvisionedThroughputExceededException, ThrottlingException,
// RequestLimitExceeded), and the generic codes of the AWS protocols.
var throttlingCodes = map[string]bool{
	"ProvisionedThroughputExceededException": true,
	"LimitExceededException":                 true,
	"ThrottlingException":                    true,
	"Throttling":                             true,
	"ThrottledException":                     true,
	"TooManyRequestsException":               true,
	"RequestLimitExceeded":                   true,
	"RequestThrottled":                       true,
	"RequestThrottledException":              true,
	"KMSThrottlingException":                 true,
	"SlowDown":                               true,
}

// transientCodes are error codes of failures that may pass when the call
// is made again: service faults, timeouts, and credentials that expired (or
// a clock that drifted) while the call was made, which the SDK refreshes for
// the next attempt.
var transientCodes = map[string]bool{
	"InternalFailure":             true,
	"InternalFailureException":    true,
	"InternalServerError":         true,
	"InternalError":               true,
	"ServiceUnavailable":          true,
	"ServiceUnavailableException": true,
	"RequestTimeout":              true,
	"RequestTimeoutException":     true,
	"ExpiredTokenException":       true,
	"ExpiredToken":                true,
	"RequestExpired":              true,
}

// Classify returns the class of a failed call's error. A nil error is
// Fatal (there is nothing to retry).
func Classify(err error) Class {
	if err == nil || errors.Is(err, context.Canceled) {
		return Fatal
	}
	// 429 is throttling whatever the body says, also when the body could
	// not be read.
	var re *smithyhttp.ResponseError
	isResponse := errors.As(err, &re)
	if isResponse && re.HTTPStatusCode() == http.StatusTooManyRequests {
		return Throttling
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		if throttlingCodes[code] {
			return Throttling
		}
		if transientCodes[code] {
			return Retryable
		}
	}
	// A response cut short: the request may or may not have taken effect.
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		return Retryable
	}
	if isResponse {
		// Status 0: no response came back (timeout, connection cut or
		// refused), which the SDK reports as a response error too.
		if st := re.HTTPStatusCode(); st == 0 || st >= 500 || st == http.StatusRequestTimeout {
			return Retryable
		}
		return Fatal
	}
	if ae != nil {
		if ae.ErrorFault() == smithy.FaultServer {
			return Retryable
		}
		return Fatal
	}
	return Retryable // network errors, timeouts
}

// IsThrottling reports whether err refuses a call for going too fast.
func IsThrottling(err error) bool { return Classify(err) == Throttling }

// IsRetryable reports whether the call may succeed if made again
// (throttling included).
func IsRetryable(err error) bool { return Classify(err) != Fatal }

// IsFatal reports whether making the call again fails the same way.
func IsFatal(err error) bool { return err != nil && Classify(err) == Fatal }

// Code returns the AWS error code of err, or "" when err carries none.
func Code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// Kind names err for a metric label: its AWS error code when it has one,
// else "http_STATUS" for an HTTP error without a code, "canceled",
// "timeout" or "network". Codes are a bounded set (the
// services' documented errors), so the label's cardinality stays small.
func Kind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	if c := Code(err); c != "" {
		return c
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() != 0 {
		return "http_" + strconv.Itoa(re.HTTPStatusCode())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var te interface{ Timeout() bool }
	if errors.As(err, &te) && te.Timeout() {
		return "timeout"
	}
	return "network"
}

// RetryableEntryCode reports whether a PutRecords entry that failed with
// the given ErrorCode is worth sending again. The API reference names two
// entry codes, ProvisionedThroughputExceededException and InternalFailure;
// KMS throttling and service unavailability are transient too.
func RetryableEntryCode(code string) bool {
	switch code {
	case "ProvisionedThroughputExceededException", "InternalFailure", "KMSThrottlingException", "ServiceUnavailable":
		return true
	}
	return false
}

// ThrottlingEntryCode reports whether a failed PutRecords entry was
// refused for the shard's rate: ProvisionedThroughputExceededException.
// KMSThrottlingException refuses it for the rate of the stream's KMS key,
// which writing slower to the shard does not help; it is retryable
// (RetryableEntryCode) but not shard throttling.
func ThrottlingEntryCode(code string) bool {
	return code == "ProvisionedThroughputExceededException"
}
