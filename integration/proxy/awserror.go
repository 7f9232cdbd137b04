package proxy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"net/http"
	"strconv"
)

// service is one of the two AWS services the proxy serves.
type service int

const (
	kinesisService service = iota
	dynamoDBService
)

func (s service) String() string {
	if s == dynamoDBService {
		return "DynamoDB"
	}
	return "Kinesis"
}

// contentType is the JSON protocol content type of the service's responses.
func (s service) contentType() string {
	if s == dynamoDBService {
		return "application/x-amz-json-1.0"
	}
	return "application/x-amz-json-1.1"
}

// Error codes the proxy sends.
const (
	codeProvisionedThroughput = "ProvisionedThroughputExceededException"
	codeThrottling            = "ThrottlingException"
	codeLimitExceeded         = "LimitExceededException"
	codeInternalFailure       = "InternalFailure"
	codeInternalServerError   = "InternalServerError"
	codeServiceUnavailable    = "ServiceUnavailable"
	codeSerialization         = "SerializationException"
	codeUnknownOperation      = "UnknownOperationException"
	codeValidation            = "ValidationException"
	codeInvalidArgument       = "InvalidArgumentException"
	codeRequestTooLarge       = "RequestEntityTooLarge"
)

// awsError is an error response in the shape of the AWS JSON protocols.
type awsError struct {
	status  int
	code    string
	message string
}

// errorType is the __type member as the service writes it: Kinesis sends the
// bare name, DynamoDB a namespaced one. The SDK accepts both forms.
func (e awsError) errorType(s service) string {
	if s != dynamoDBService {
		return e.code
	}
	switch e.code {
	case codeSerialization, codeUnknownOperation, codeRequestTooLarge:
		return "com.amazon.coral.service#" + e.code
	}
	return "com.amazonaws.dynamodb.v20120810#" + e.code
}

// writeError sends e as the service would: the status, a JSON body with
// __type and message, and the x-amzn-ErrorType header.
func writeError(w http.ResponseWriter, s service, e awsError) {
	body, _ := json.Marshal(struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}{e.errorType(s), e.message})
	h := w.Header()
	h.Set("Content-Type", s.contentType())
	h.Set("X-Amzn-Errortype", e.code)
	h.Set("X-Amzn-Requestid", requestID())
	setLengthAndChecksum(h, s, body)
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// writeJSON sends a successful response with body.
func writeJSON(w http.ResponseWriter, s service, body []byte) {
	h := w.Header()
	h.Set("Content-Type", s.contentType())
	h.Set("X-Amzn-Requestid", requestID())
	setLengthAndChecksum(h, s, body)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// setLengthAndChecksum sets Content-Length and, for DynamoDB, the CRC32 of
// the body that DynamoDB sends and the SDK checks.
func setLengthAndChecksum(h http.Header, s service, body []byte) {
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if s == dynamoDBService {
		h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	}
}
