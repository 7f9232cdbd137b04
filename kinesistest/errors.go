package kinesistest

import (
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// account and region name the stream in ARNs and error messages.
const (
	account = "123456789012"
	region  = "us-east-1"
)

// requestID is the request ID of every error response.
const requestID = "kinesistest"

// NewError returns an error in the shape the SDK gives for an error
// response of Kinesis: the HTTP status, and as the API error the SDK's
// typed error for the codes the Kinesis API declares (so that errors.As
// with *types.ProvisionedThroughputExceededException and the like works),
// else a *smithy.GenericAPIError with the code. smithy.APIError's
// ErrorCode is code either way.
//
// Hooks return it to inject failures (see Config.Fault); ThroughputExceeded,
// LimitExceeded and InternalFailure are the common cases.
func NewError(status int, code, message string) error {
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: http.Header{}}},
			Err:      apiError(code, message),
		},
		RequestID: requestID,
	}
}

// ThroughputExceeded returns the error with which Kinesis refuses a call
// for the rate of the stream or shard: status 400,
// *types.ProvisionedThroughputExceededException.
func ThroughputExceeded() error {
	return NewError(http.StatusBadRequest, "ProvisionedThroughputExceededException", "Rate exceeded for stream.")
}

// LimitExceeded returns the error with which Kinesis refuses a control
// call (ListShards, SplitShard, ...) for its rate: status 400,
// *types.LimitExceededException.
func LimitExceeded() error {
	return NewError(http.StatusBadRequest, "LimitExceededException", "Rate exceeded.")
}

// InternalFailure returns a Kinesis service fault: status 500, code
// InternalFailure (a *smithy.GenericAPIError, as the SDK reports it).
func InternalFailure() error {
	return NewError(http.StatusInternalServerError, "InternalFailure", "Internal service failure.")
}

// apiError returns the SDK's typed error for a Kinesis error code.
func apiError(code, message string) error {
	m := aws.String(message)
	switch code {
	case "AccessDeniedException":
		return &types.AccessDeniedException{Message: m}
	case "ExpiredIteratorException":
		return &types.ExpiredIteratorException{Message: m}
	case "ExpiredNextTokenException":
		return &types.ExpiredNextTokenException{Message: m}
	case "InternalFailureException":
		return &types.InternalFailureException{Message: m}
	case "InvalidArgumentException":
		return &types.InvalidArgumentException{Message: m}
	case "KMSAccessDeniedException":
		return &types.KMSAccessDeniedException{Message: m}
	case "KMSDisabledException":
		return &types.KMSDisabledException{Message: m}
	case "KMSInvalidStateException":
		return &types.KMSInvalidStateException{Message: m}
	case "KMSNotFoundException":
		return &types.KMSNotFoundException{Message: m}
	case "KMSOptInRequired":
		return &types.KMSOptInRequired{Message: m}
	case "KMSThrottlingException":
		return &types.KMSThrottlingException{Message: m}
	case "LimitExceededException":
		return &types.LimitExceededException{Message: m}
	case "ProvisionedThroughputExceededException":
		return &types.ProvisionedThroughputExceededException{Message: m}
	case "ResourceInUseException":
		return &types.ResourceInUseException{Message: m}
	case "ResourceNotFoundException":
		return &types.ResourceNotFoundException{Message: m}
	case "ValidationException":
		return &types.ValidationException{Message: m}
	}
	return &smithy.GenericAPIError{Code: code, Message: message}
}

// The errors the stream answers with.

func invalidArgument(format string, args ...any) error {
	return NewError(http.StatusBadRequest, "InvalidArgumentException", fmt.Sprintf(format, args...))
}

// validation is the error of a request that breaks a constraint of the
// API model (a length, a range, a pattern), which Kinesis checks before
// looking at the request's meaning.
func validation(format string, args ...any) error {
	return NewError(http.StatusBadRequest, "ValidationException", "1 validation error detected: "+fmt.Sprintf(format, args...))
}

func notFound(format string, args ...any) error {
	return NewError(http.StatusBadRequest, "ResourceNotFoundException", fmt.Sprintf(format, args...))
}

// paramRequired is the error the SDK returns, without sending the request,
// when a required member of the input is missing.
func paramRequired(input string, fields ...string) error {
	e := smithy.InvalidParamsError{Context: input}
	for _, f := range fields {
		e.Add(smithy.NewErrParamRequired(f))
	}
	return e
}

// entryMessage is the ErrorMessage of a PutRecords entry that failed with
// code.
func entryMessage(code, shardID, stream string) string {
	switch code {
	case "ProvisionedThroughputExceededException":
		return fmt.Sprintf("Rate exceeded for shard %s in stream %s under account %s.", shardID, stream, account)
	case "InternalFailure":
		return "Internal service failure."
	}
	return "Failed by the EntryFault hook."
}

// entryError is the error of a PutRecord whose entry failed with code.
func entryError(code, message string) error {
	status := http.StatusBadRequest
	switch code {
	case "InternalFailure":
		status = http.StatusInternalServerError
	case "ServiceUnavailable":
		status = http.StatusServiceUnavailable
	}
	return NewError(status, code, message)
}
