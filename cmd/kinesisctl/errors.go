package main

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/aws/aws-sdk-go-v2/aws"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Exit codes; the package documentation lists what each means.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitNotFound    = 3
	exitConfig      = 4
	exitUnreachable = 5
	exitConflict    = 6
	exitIncomplete  = 7
	exitInterrupted = 130
)

// exitError is an error that carries the exit code it ends the program with.
// Its message is what the user reads, so it says what to do next.
type exitError struct {
	code int
	msg  string
	err  error // the cause, kept for errors.Is/As; not printed separately
}

func (e *exitError) Error() string { return e.msg }
func (e *exitError) Unwrap() error { return e.err }

func fail(code int, err error, format string, args ...any) *exitError {
	return &exitError{code: code, msg: fmt.Sprintf(format, args...), err: err}
}

func usageErr(format string, args ...any) *exitError {
	return &exitError{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

// classify turns any error into an exitError. Errors that are already
// exitErrors keep their code and message; AWS and network errors get the
// code of their kind and a hint naming endpoint, the service's address.
func classify(err error, endpoint string) *exitError {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee
	}
	if errors.Is(err, context.Canceled) {
		return fail(exitInterrupted, err, "interrupted")
	}
	var (
		sendErr    *smithyhttp.RequestSendError
		netErr     net.Error
		notFound   *kintypes.ResourceNotFoundException
		inUse      *kintypes.ResourceInUseException
		limit      *kintypes.LimitExceededException
		invalidArg *kintypes.InvalidArgumentException
		apiErr     smithy.APIError
	)
	switch {
	case errors.As(err, &sendErr), errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		return fail(exitUnreachable, err,
			"cannot reach %s: %v\ncheck the endpoint (--endpoint-url, AWS_ENDPOINT_URL*, --region) and the network; "+
				"for the local emulators run: integration/emulators/run start", endpoint, netCause(err))
	case errors.As(err, &notFound):
		return fail(exitNotFound, err, "not found: %s", aws.ToString(notFound.Message))
	case errors.As(err, &inUse):
		return fail(exitConflict, err, "resource busy or already exists: %s\nwait until it is ACTIVE (kinesisctl stream describe) and retry", aws.ToString(inUse.Message))
	case errors.As(err, &limit):
		return fail(exitConflict, err, "AWS limit reached: %s\nretry later or raise the account's limit", aws.ToString(limit.Message))
	case errors.As(err, &invalidArg):
		return fail(exitUsage, err, "invalid argument: %s", aws.ToString(invalidArg.Message))
	case errors.As(err, &apiErr):
		switch apiErr.ErrorCode() {
		case "AccessDeniedException", "AccessDenied", "UnrecognizedClientException", "InvalidSignatureException",
			"ExpiredTokenException", "ExpiredToken", "InvalidClientTokenId", "MissingAuthenticationToken":
			return fail(exitConfig, err, "%s: %s\ncheck the credentials (--profile, AWS_PROFILE, AWS_ACCESS_KEY_ID) and that their IAM policy allows this call (see README, IAM policies)",
				apiErr.ErrorCode(), apiErr.ErrorMessage())
		}
	}
	return fail(exitFailure, err, "%v", err)
}

// netCause returns the part of a network failure worth reading: the dial or
// read error ("dial tcp 127.0.0.1:1: connect: connection refused") when there
// is one, else the innermost error.
func netCause(err error) error {
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return opErr
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
