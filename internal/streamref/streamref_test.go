package streamref

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestParse(t *testing.T) {
	r, err := Parse("events")
	if err != nil || aws.ToString(r.Name()) != "events" || r.ARN() != nil || r.String() != "events" || r.ShortName() != "events" {
		t.Errorf("Parse(name) = %+v, %v", r, err)
	}
	const arn = "arn:aws:kinesis:us-east-1:123456789012:stream/events"
	r, err = Parse(arn)
	if err != nil || r.Name() != nil || aws.ToString(r.ARN()) != arn || r.String() != arn || r.ShortName() != "events" {
		t.Errorf("Parse(ARN) = %+v, %v", r, err)
	}
	for _, bad := range []string{"", "arn:aws:kinesis:us-east-1:123456789012:stream/", "arn:aws:sqs:us-east-1:123456789012:stream/q", "arn:aws:kinesis:us-east-1:123456789012:events"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
