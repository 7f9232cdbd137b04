package kpl

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/kinesisgo/kinesis/internal/b64"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// PutRecords request bodies are written by the producer itself, straight
// into one buffer of the exact size: the SDK's serializer would build the
// same JSON document through its generic shape serializer, growing its
// buffer and base64-encoding each record into a slice of its own. The body
// goes through the rest of the SDK's middleware stack unchanged (endpoint
// resolution, signing, retries, the response's deserialization): only the
// serialize step's operation serializer is replaced, for this one call.
//
// The document is the awsJson1_1 form of PutRecordsInput:
//
//	{"Records":[{"Data":"<base64>","ExplicitHashKey":"…","PartitionKey":"…"},…],"StreamARN":"…","StreamName":"…"}

// putRecordsTarget is the X-Amz-Target of PutRecords (awsJson1_1: the
// service's shape name and the operation's).
const putRecordsTarget = "Kinesis_20131202.PutRecords"

// bodySize returns the exact size of the body appendBody writes.
func bodySize(in *kinesis.PutRecordsInput, containers []*aggregation.Encoder) int {
	n := len(`{"Records":[]}`) - min(len(in.Records), 1) // no comma after the last entry
	for i := range in.Records {
		e := &in.Records[i]
		n += len(`{"Data":"","PartitionKey":""},`)
		if containers != nil && containers[i] != nil {
			n += containers[i].Base64Size()
		} else {
			n += b64.EncodedLen(len(e.Data))
		}
		if e.PartitionKey != nil {
			n += jsonStringSize(*e.PartitionKey)
		}
		if e.ExplicitHashKey != nil {
			n += len(`,"ExplicitHashKey":""`) + jsonStringSize(*e.ExplicitHashKey)
		}
	}
	if in.StreamARN != nil {
		n += len(`,"StreamARN":""`) + jsonStringSize(*in.StreamARN)
	}
	if in.StreamName != nil {
		n += len(`,"StreamName":""`) + jsonStringSize(*in.StreamName)
	}
	return n
}

// appendBody appends the JSON document of in to dst. The data of entry i is
// containers[i]'s container when containers is not nil and containers[i]
// is not (the entry's own Data is then not read), and its Data otherwise.
// The containers' digests are computed together first (SumMany), with sc's
// buffers. With dst of capacity bodySize(in, containers) beyond its length
// and sc's buffers grown by an earlier body, it does not allocate.
func appendBody(dst []byte, in *kinesis.PutRecordsInput, containers []*aggregation.Encoder, sc *bodyScratch) []byte {
	sc.encs = sc.encs[:0]
	for _, c := range containers {
		if c != nil {
			sc.encs = append(sc.encs, c)
		}
	}
	if cap(sc.sums) < len(sc.encs) {
		sc.sums = make([][md5.Size]byte, len(sc.encs))
	}
	sums := sc.sums[:len(sc.encs)]
	sc.buf = aggregation.SumMany(sc.encs, sums, sc.buf)
	clear(sc.encs) // no reference kept to a container reused later
	dst = append(dst, `{"Records":[`...)
	for i := range in.Records {
		e := &in.Records[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"Data":"`...)
		if containers != nil && containers[i] != nil {
			dst = containers[i].AppendBase64Sum(dst, sums[0])
			sums = sums[1:]
		} else {
			dst = b64.AppendEncode(dst, e.Data)
		}
		dst = append(dst, '"')
		if e.ExplicitHashKey != nil {
			dst = append(dst, `,"ExplicitHashKey":"`...)
			dst = appendJSONString(dst, *e.ExplicitHashKey)
			dst = append(dst, '"')
		}
		dst = append(dst, `,"PartitionKey":"`...)
		if e.PartitionKey != nil {
			dst = appendJSONString(dst, *e.PartitionKey)
		}
		dst = append(dst, `"}`...)
	}
	dst = append(dst, ']')
	if in.StreamARN != nil {
		dst = append(dst, `,"StreamARN":"`...)
		dst = appendJSONString(dst, *in.StreamARN)
		dst = append(dst, '"')
	}
	if in.StreamName != nil {
		dst = append(dst, `,"StreamName":"`...)
		dst = appendJSONString(dst, *in.StreamName)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// jsonStringSize returns the size of s escaped as the content of a JSON
// string by appendJSONString.
func jsonStringSize(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			n++
		case c < 0x20:
			n += 5 // \u00XX
		}
	}
	return n
}

// appendJSONString appends s, valid UTF-8, escaped as the content of a JSON
// string (RFC 8259: the quotation mark, the reverse solidus and the control
// characters are escaped; everything else is itself).
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// bodyScratch is what appendBody reuses from one body to the next: the
// containers of the request, their digests, and the copies SumMany digests
// them from.
type bodyScratch struct {
	encs []*aggregation.Encoder
	sums [][md5.Size]byte
	buf  []byte
}

// bodySerializer is the serialize step's operation serializer for one
// PutRecords call whose body is already written.
type bodySerializer struct {
	body []byte
}

// ID is the ID of the SDK's operation serializer, which it replaces.
func (*bodySerializer) ID() string { return "OperationSerializer" }

// HandleSerialize sets up the request as the SDK's awsJson1_1 protocol
// does, with the prepared body.
func (m *bodySerializer) HandleSerialize(ctx context.Context, in middleware.SerializeInput, next middleware.SerializeHandler) (middleware.SerializeOutput, middleware.Metadata, error) {
	req, ok := in.Request.(*smithyhttp.Request)
	if !ok {
		return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("kpl: unexpected transport type %T", in.Request)
	}
	req.Method = http.MethodPost
	if len(req.URL.Path) == 0 {
		req.URL.Path = "/"
	}
	req.Header.Set("X-Amz-Target", putRecordsTarget)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	sreq, err := req.SetStream(bytes.NewReader(m.body))
	if err != nil {
		return middleware.SerializeOutput{}, middleware.Metadata{}, fmt.Errorf("kpl: set request body: %w", err)
	}
	*req = *sreq
	return next.HandleSerialize(ctx, in)
}

// withBody returns the call option that sends body as the request's
// document in place of the SDK's serialization of the input. A client that
// is not the SDK's (a test double) ignores it and reads the input.
func withBody(body []byte) func(*kinesis.Options) {
	m := &bodySerializer{body: body}
	return func(o *kinesis.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			_, err := s.Serialize.Swap(m.ID(), m)
			return err
		})
	}
}
