// Package streamref names a Kinesis stream by name or by ARN, as every
// Kinesis API call accepts (StreamName or StreamARN).
package streamref

import (
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Ref is a stream given by name or by ARN.
type Ref struct {
	name, arn string
}

// Parse reads s as a stream ARN when it starts with "arn:", else as a
// stream name. It rejects an empty name and an ARN that does not name a
// Kinesis stream.
func Parse(s string) (Ref, error) {
	switch {
	case s == "":
		return Ref{}, fmt.Errorf("stream name or ARN is empty")
	case strings.HasPrefix(s, "arn:"):
		// arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME
		parts := strings.SplitN(s, ":", 6)
		if len(parts) != 6 || parts[2] != "kinesis" || !strings.HasPrefix(parts[5], "stream/") || len(parts[5]) == len("stream/") {
			return Ref{}, fmt.Errorf("%q is not a Kinesis stream ARN (arn:PARTITION:kinesis:REGION:ACCOUNT:stream/NAME)", s)
		}
		return Ref{arn: s}, nil
	}
	return Ref{name: s}, nil
}

// Name returns the StreamName parameter: the name, or nil for an ARN.
func (r Ref) Name() *string {
	if r.name == "" {
		return nil
	}
	return aws.String(r.name)
}

// ARN returns the StreamARN parameter: the ARN, or nil for a name.
func (r Ref) ARN() *string {
	if r.arn == "" {
		return nil
	}
	return aws.String(r.arn)
}

// String returns the name or the ARN, as given.
func (r Ref) String() string {
	if r.arn != "" {
		return r.arn
	}
	return r.name
}

// ShortName is the stream's name, also for an ARN (the part after
// "stream/"), for logs and metric labels.
func (r Ref) ShortName() string {
	if r.arn != "" {
		return r.arn[strings.Index(r.arn, ":stream/")+len(":stream/"):]
	}
	return r.name
}
