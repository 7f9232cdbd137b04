// Package config reads the kinesis-agent configuration file, agent.json, in
// the format of AWS's Kinesis Agent, so that an existing file can be brought
// over unchanged.
//
// Every key of AWS's format is honoured: flows to Kinesis Data Streams
// (kinesisStream) and to Amazon Data Firehose (deliveryStream), the endpoints
// (kinesis.endpoint, firehose.endpoint, sts.endpoint) and an assumed role
// (assumeRoleARN, assumeRoleExternalId). Keys that only concern AWS's
// CloudWatch metrics or its sending threads are accepted and reported in
// File.Warnings; a key the format does not know is an error, named in the
// message.
//
// Additions of this implementation (all optional):
//
//	metrics.listen          address for a Prometheus /metrics endpoint, e.g. "127.0.0.1:9462"
//	flows[].assumeRoleARN, flows[].assumeRoleExternalId
//	                        a role for this flow only, instead of the file's assumeRoleARN
//	flows[].partitionKeyOption  FIELD (with partitionKeyField: a top-level field of the
//	                        record after LOGTOJSON or CSVTOJSON) or REGEX (with
//	                        partitionKeyPattern: the first capture group matched in
//	                        the raw line) take the key from the record; a record without
//	                        the field or the match gets a RANDOM key
//	flows[].aggregation     pack user records into KPL aggregated records (default false)
//	flows[].compression     NONE (default), GZIP or ZSTD: compress aggregated records
//	                        (needs aggregation; only this project's consumer reads them)
//	flows[].maxRecordSizeBytes   largest record data sent, in bytes (default 1 MiB minus
//	                        256 B left for the partition key, which Kinesis counts too)
//	flows[].longLineAction  TRUNCATE (default) or SPLIT a line longer than maxRecordSizeBytes
//	flows[].dropUnparsedRecords  drop a line a CSVTOJSON/LOGTOJSON option cannot parse
//	                        instead of sending it unchanged (default false; counted either way)
//	flows[].followSymlinks  open files reached through a symbolic link that leads
//	                        out of the filePattern's directory (default false: such a
//	                        file is not read, and counted)
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kinesisgo/kinesis/internal/streamref"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

// DefaultCheckpointFile is where acknowledged file offsets are kept when the
// configuration names no checkpointFile. It lies under /var/lib so that it
// survives reboots.
const DefaultCheckpointFile = "/var/lib/kinesis-agent/checkpoints.json"

// DefaultMaxRecordSize is the default largest record data: 1 MiB less room
// for a partition key of up to 256 bytes.
const DefaultMaxRecordSize = 1<<20 - 256

// DefaultFirehoseMaxRecordSize is the default and largest record data of a
// deliveryStream flow: Firehose takes records of at most 1,000 KiB.
const DefaultFirehoseMaxRecordSize = 1000 << 10

// Partition key options. FIELD and REGEX are extensions of this agent.
const (
	PartitionKeyRandom        = "RANDOM"
	PartitionKeyDeterministic = "DETERMINISTIC"
	PartitionKeyField         = "FIELD"
	PartitionKeyRegex         = "REGEX"
)

// Initial positions.
const (
	StartOfFile = "START_OF_FILE"
	EndOfFile   = "END_OF_FILE"
)

// Long line actions.
const (
	LongLineTruncate = "TRUNCATE"
	LongLineSplit    = "SPLIT"
)

// Data processing option names.
const (
	OptSingleLine  = "SINGLELINE"
	OptCSVToJSON   = "CSVTOJSON"
	OptLogToJSON   = "LOGTOJSON"
	OptAddMetadata = "ADDMETADATA"
)

// Log formats of the LOGTOJSON option.
const (
	FormatCommonApache   = "COMMONAPACHELOG"
	FormatCombinedApache = "COMBINEDAPACHELOG"
	FormatApacheError    = "APACHEERRORLOG"
	FormatSyslog         = "SYSLOG"
	FormatRFC3339Syslog  = "RFC3339SYSLOG"
)

// File is a parsed and validated agent.json with every default applied.
type File struct {
	// CheckpointFile is the path of the file holding acknowledged offsets.
	// Default DefaultCheckpointFile.
	CheckpointFile string
	// KinesisEndpoint overrides the Kinesis endpoint URL: http or https
	// with a host (after Parse, a host name without a scheme is an https
	// URL, as in AWS's agent). Default: the AWS config chain (including
	// AWS_ENDPOINT_URL_KINESIS and AWS_ENDPOINT_URL).
	KinesisEndpoint string
	// KinesisRegion is the AWS region. Default: the AWS config chain.
	KinesisRegion string
	// FirehoseEndpoint overrides the Firehose endpoint URL (checked like
	// KinesisEndpoint). Default: the AWS
	// config chain (including AWS_ENDPOINT_URL_FIREHOSE and AWS_ENDPOINT_URL).
	FirehoseEndpoint string
	// STSEndpoint overrides the STS endpoint URL used to assume roles
	// (checked like KinesisEndpoint). Default: the AWS config chain (including AWS_ENDPOINT_URL_STS).
	STSEndpoint string
	// AccessKeyID and SecretAccessKey are static credentials. Default: the
	// AWS config chain. Prefer the chain; never logged.
	AccessKeyID     string
	SecretAccessKey string
	// AssumeRoleARN and AssumeRoleExternalID are the role every flow
	// assumes (through STS, with the credentials above or the chain's)
	// unless the flow names its own. Default: no role.
	AssumeRoleARN        string
	AssumeRoleExternalID string
	// ShutdownTimeout bounds how long a shutdown waits for in-flight records.
	// Default 10s.
	ShutdownTimeout time.Duration
	// MetricsListen is the address of the Prometheus endpoint. Default none.
	MetricsListen string
	// Flows are the files-to-stream pipelines. At least one.
	Flows []Flow
	// Warnings name accepted keys that have no effect here.
	Warnings []string
}

// Flow tails the files matching FilePattern into Stream or DeliveryStream.
type Flow struct {
	// FilePattern is an absolute glob (filepath.Match syntax) of files to tail.
	FilePattern string
	// Stream is the Kinesis data stream name (1 to 128 letters, digits,
	// '_', '.' or '-') or ARN. Exactly one of Stream and DeliveryStream is
	// set.
	Stream string
	// DeliveryStream is the Amazon Data Firehose stream name (1 to 64
	// letters, digits, '_', '.' or '-').
	DeliveryStream string
	// AssumeRoleARN is the role the flow's calls are signed with, and
	// AssumeRoleExternalID the external ID given to STS with it. Default
	// (after Parse): the file's assumeRoleARN; empty means the credentials
	// of the file or of the AWS config chain.
	AssumeRoleARN        string
	AssumeRoleExternalID string
	// PartitionKeyOption is RANDOM (default), DETERMINISTIC (derived from
	// the record's data), FIELD (PartitionKeyField of the processed record)
	// or REGEX (the first group of PartitionKeyPattern in the raw line).
	// Kinesis flows only.
	PartitionKeyOption string
	// PartitionKeyField is the top-level field of the processed record (a
	// JSON object, as LOGTOJSON and CSVTOJSON make) whose value is the
	// partition key (FIELD). A record without it gets a RANDOM key.
	PartitionKeyField string
	// PartitionKeyPattern is matched against the raw line; its first
	// capture group is the partition key (REGEX). A line without a match,
	// or with an empty group, gets a RANDOM key.
	PartitionKeyPattern *regexp.Regexp
	// InitialPosition is where the files that exist when the flow first
	// starts are read from: END_OF_FILE (default) or START_OF_FILE. Files
	// created later, and files found at a later start without a saved
	// position (created while the agent was down), are read from their start.
	InitialPosition string
	// MaxBufferAge is how long records may wait in the producer before they are
	// sent, and how long an incomplete last line or multi-line record is held
	// before it is sent as it is. Default 1s (maxBufferAgeMillis).
	MaxBufferAge time.Duration
	// MaxBufferSizeRecords is the most records sent in one PutRecords (or
	// PutRecordBatch) call. Default 500, at most 500.
	MaxBufferSizeRecords int
	// MaxBufferSizeBytes is the most bytes sent in one call. Default 4 MiB,
	// at most 5 MiB (PutRecords) or 4 MiB (PutRecordBatch).
	MaxBufferSizeBytes int
	// PollInterval is how often the files are checked when no file system
	// event arrives. Default 250ms (minTimeBetweenFilePollsMillis).
	PollInterval time.Duration
	// SkipHeaderLines lines are skipped at the start of every file. Default 0.
	SkipHeaderLines int
	// MultiLineStartPattern, when set, marks the first line of each record;
	// the lines that follow up to the next match belong to the same record.
	MultiLineStartPattern *regexp.Regexp
	// TruncatedRecordTerminator ends a record cut at MaxRecordSizeBytes.
	// Default "\n".
	TruncatedRecordTerminator string
	// MaxRecordSizeBytes is the largest record data sent, in bytes.
	// Default 1,048,320 (1 MiB less 256 B for the partition key, which
	// Kinesis counts within its 1 MiB record limit). At most 5,242,624 (one
	// PutRecords request); raise it above the default only for streams whose
	// maximum record size was raised. For a deliveryStream flow the default
	// and the most is 1,024,000 (Firehose's 1,000 KiB).
	MaxRecordSizeBytes int
	// LongLineAction is TRUNCATE (default: the rest of the line is dropped and
	// counted) or SPLIT (the line is sent as several records).
	LongLineAction string
	// DropUnparsedRecords drops a record that a CSVTOJSON or LOGTOJSON option
	// cannot parse instead of sending it unchanged. Default false.
	DropUnparsedRecords bool
	// Aggregation packs records into KPL aggregated records. Default false.
	// Kinesis flows only.
	Aggregation bool
	// Compression compresses aggregated records. Default aggregation.None.
	Compression aggregation.Compression
	// FollowSymlinks lets the flow read a file whose resolved path lies
	// outside the directory of FilePattern (a symbolic link out of it).
	// Default false: such a file is not opened, so that a link planted in a
	// log directory cannot ship the file it points to (followSymlinks).
	FollowSymlinks bool
	// Processing is the chain of data processing options, applied in order.
	Processing []Option
}

// ID names the flow in offsets, logs and metrics: stream and file pattern,
// with a "firehose:" prefix for a deliveryStream flow.
func (f Flow) ID() string {
	if f.DeliveryStream != "" {
		return "firehose:" + f.DeliveryStream + ":" + f.FilePattern
	}
	return f.Stream + ":" + f.FilePattern
}

// Firehose reports whether the flow sends to a Firehose delivery stream.
func (f Flow) Firehose() bool { return f.DeliveryStream != "" }

// Option is one data processing option.
type Option struct {
	// Name is SINGLELINE, CSVTOJSON, LOGTOJSON or ADDMETADATA.
	Name string
	// CustomFieldNames name the CSV columns (CSVTOJSON, required) or the
	// regular expression groups (LOGTOJSON, optional).
	CustomFieldNames []string
	// Delimiter separates CSV fields (CSVTOJSON). Default ",".
	Delimiter string
	// LogFormat is the LOGTOJSON format.
	LogFormat string
	// MatchPattern replaces the format's expression (LOGTOJSON).
	MatchPattern *regexp.Regexp
	// Timestamp adds the time the record was read (ADDMETADATA).
	Timestamp bool
	// Metadata is added to every record (ADDMETADATA).
	Metadata map[string]any
}

// Load reads and parses the configuration file at path.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return f, nil
}

// raw mirrors agent.json. Pointer fields tell "absent" from zero.
type raw struct {
	CheckpointFile        string            `json:"checkpointFile"`
	KinesisEndpoint       string            `json:"kinesis.endpoint"`
	KinesisRegion         string            `json:"kinesis.region"`
	FirehoseEndpoint      string            `json:"firehose.endpoint"`
	STSEndpoint           string            `json:"sts.endpoint"`
	AccessKeyID           string            `json:"awsAccessKeyId"`
	SecretAccessKey       string            `json:"awsSecretAccessKey"`
	AssumeRoleARN         string            `json:"assumeRoleARN"`
	AssumeRoleExternalID  string            `json:"assumeRoleExternalId"`
	ShutdownTimeoutMillis *int64            `json:"shutdownTimeoutMillis"`
	MetricsListen         string            `json:"metrics.listen"`
	Flows                 []json.RawMessage `json:"flows"`

	// Accepted for compatibility, without effect here.
	EmitMetrics                   any    `json:"cloudwatch.emitMetrics"`
	CloudWatchEndpoint            string `json:"cloudwatch.endpoint"`
	MaxSendingThreads             any    `json:"maxSendingThreads"`
	SendingThreadsMaxQueueSize    any    `json:"sendingThreadsMaxQueueSize"`
	SendingThreadsKeepAliveMillis any    `json:"sendingThreadsKeepAliveMillis"`
}

type rawFlow struct {
	FilePattern                   string            `json:"filePattern"`
	KinesisStream                 string            `json:"kinesisStream"`
	DeliveryStream                string            `json:"deliveryStream"`
	AssumeRoleARN                 string            `json:"assumeRoleARN"`
	AssumeRoleExternalID          *string           `json:"assumeRoleExternalId"`
	PartitionKeyOption            string            `json:"partitionKeyOption"`
	PartitionKeyField             string            `json:"partitionKeyField"`
	PartitionKeyPattern           string            `json:"partitionKeyPattern"`
	InitialPosition               string            `json:"initialPosition"`
	MaxBufferAgeMillis            *int64            `json:"maxBufferAgeMillis"`
	MaxBufferSizeRecords          *int              `json:"maxBufferSizeRecords"`
	MaxBufferSizeBytes            *int              `json:"maxBufferSizeBytes"`
	MinTimeBetweenFilePollsMillis *int64            `json:"minTimeBetweenFilePollsMillis"`
	SkipHeaderLines               *int              `json:"skipHeaderLines"`
	MultiLineStartPattern         string            `json:"multiLineStartPattern"`
	TruncatedRecordTerminator     *string           `json:"truncatedRecordTerminator"`
	DataProcessingOptions         []json.RawMessage `json:"dataProcessingOptions"`
	MaxRecordSizeBytes            *int              `json:"maxRecordSizeBytes"`
	LongLineAction                string            `json:"longLineAction"`
	DropUnparsedRecords           *flexBool         `json:"dropUnparsedRecords"`
	Aggregation                   *flexBool         `json:"aggregation"`
	Compression                   string            `json:"compression"`
	FollowSymlinks                *flexBool         `json:"followSymlinks"`
}

type rawOption struct {
	OptionName       string         `json:"optionName"`
	CustomFieldNames []string       `json:"customFieldNames"`
	Delimiter        *string        `json:"delimiter"`
	LogFormat        string         `json:"logFormat"`
	MatchPattern     string         `json:"matchPattern"`
	Timestamp        *flexBool      `json:"timestamp"`
	Metadata         map[string]any `json:"metadata"`
}

// flexBool accepts true, false, "true" and "false", as AWS's agent does.
type flexBool bool

func (b *flexBool) UnmarshalJSON(p []byte) error {
	s := strings.Trim(string(p), `"`)
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %s", p)
	}
	*b = flexBool(v)
	return nil
}

// decodeStrict decodes b into v, rejecting unknown keys by name.
func decodeStrict(b []byte, v any, where string) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := err.Error()
		if i := strings.Index(msg, "unknown field "); i >= 0 {
			return fmt.Errorf("%s: unknown key %s", where, strings.TrimPrefix(msg[i:], "unknown field "))
		}
		return fmt.Errorf("%s: %w", where, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: trailing data after the JSON object", where)
	}
	return nil
}

// Parse parses and validates the contents of an agent.json.
func Parse(b []byte) (*File, error) {
	var r raw
	if err := decodeStrict(b, &r, "agent.json"); err != nil {
		return nil, err
	}
	f := &File{
		CheckpointFile:       r.CheckpointFile,
		KinesisEndpoint:      r.KinesisEndpoint,
		KinesisRegion:        r.KinesisRegion,
		FirehoseEndpoint:     r.FirehoseEndpoint,
		STSEndpoint:          r.STSEndpoint,
		AccessKeyID:          r.AccessKeyID,
		SecretAccessKey:      r.SecretAccessKey,
		AssumeRoleARN:        r.AssumeRoleARN,
		AssumeRoleExternalID: r.AssumeRoleExternalID,
		ShutdownTimeout:      10 * time.Second,
		MetricsListen:        r.MetricsListen,
	}
	if f.CheckpointFile == "" {
		f.CheckpointFile = DefaultCheckpointFile
	}
	for _, e := range []struct {
		key string
		v   *string
	}{{"kinesis.endpoint", &f.KinesisEndpoint}, {"firehose.endpoint", &f.FirehoseEndpoint}, {"sts.endpoint", &f.STSEndpoint}} {
		u, err := endpointURL(e.key, *e.v)
		if err != nil {
			return nil, err
		}
		*e.v = u
	}
	if r.ShutdownTimeoutMillis != nil {
		f.ShutdownTimeout = time.Duration(*r.ShutdownTimeoutMillis) * time.Millisecond
	}
	warn := func(key string, set bool) {
		if set {
			f.Warnings = append(f.Warnings, fmt.Sprintf("key %q has no effect in this agent", key))
		}
	}
	warn("cloudwatch.emitMetrics", r.EmitMetrics != nil)
	warn("cloudwatch.endpoint", r.CloudWatchEndpoint != "")
	warn("maxSendingThreads", r.MaxSendingThreads != nil)
	warn("sendingThreadsMaxQueueSize", r.SendingThreadsMaxQueueSize != nil)
	warn("sendingThreadsKeepAliveMillis", r.SendingThreadsKeepAliveMillis != nil)
	if r.AssumeRoleExternalID != "" && r.AssumeRoleARN == "" {
		return nil, errors.New("agent.json: assumeRoleExternalId needs assumeRoleARN")
	}
	for i, rf := range r.Flows {
		where := fmt.Sprintf("flows[%d]", i)
		fl, err := parseFlow(rf, where)
		if err != nil {
			return nil, err
		}
		if fl.AssumeRoleARN == "" {
			fl.AssumeRoleARN, fl.AssumeRoleExternalID = f.AssumeRoleARN, f.AssumeRoleExternalID
		}
		f.Flows = append(f.Flows, fl)
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}

func parseFlow(b []byte, where string) (Flow, error) {
	var r rawFlow
	if err := decodeStrict(b, &r, where); err != nil {
		return Flow{}, err
	}
	if r.AssumeRoleExternalID != nil && r.AssumeRoleARN == "" {
		return Flow{}, fmt.Errorf("%s: assumeRoleExternalId needs assumeRoleARN", where)
	}
	fl := Flow{
		FilePattern:               r.FilePattern,
		Stream:                    r.KinesisStream,
		DeliveryStream:            r.DeliveryStream,
		AssumeRoleARN:             r.AssumeRoleARN,
		PartitionKeyOption:        r.PartitionKeyOption,
		PartitionKeyField:         r.PartitionKeyField,
		InitialPosition:           r.InitialPosition,
		MaxBufferAge:              time.Second,
		MaxBufferSizeRecords:      500,
		MaxBufferSizeBytes:        4 << 20,
		PollInterval:              250 * time.Millisecond,
		TruncatedRecordTerminator: "\n",
		MaxRecordSizeBytes:        DefaultMaxRecordSize,
		LongLineAction:            r.LongLineAction,
	}
	if r.AssumeRoleExternalID != nil {
		fl.AssumeRoleExternalID = *r.AssumeRoleExternalID
	}
	if fl.Firehose() {
		fl.MaxRecordSizeBytes = DefaultFirehoseMaxRecordSize
	}
	if r.PartitionKeyPattern != "" {
		re, err := regexp.Compile(r.PartitionKeyPattern)
		if err != nil {
			return Flow{}, fmt.Errorf("%s: partitionKeyPattern: %w", where, err)
		}
		if re.NumSubexp() < 1 {
			return Flow{}, fmt.Errorf("%s: partitionKeyPattern %q has no capture group: the first group is the key", where, r.PartitionKeyPattern)
		}
		fl.PartitionKeyPattern = re
	}
	if fl.PartitionKeyOption == "" {
		fl.PartitionKeyOption = PartitionKeyRandom
	}
	if fl.InitialPosition == "" {
		fl.InitialPosition = EndOfFile
	}
	if fl.LongLineAction == "" {
		fl.LongLineAction = LongLineTruncate
	}
	if r.MaxBufferAgeMillis != nil {
		fl.MaxBufferAge = time.Duration(*r.MaxBufferAgeMillis) * time.Millisecond
	}
	if r.MaxBufferSizeRecords != nil {
		fl.MaxBufferSizeRecords = *r.MaxBufferSizeRecords
	}
	if r.MaxBufferSizeBytes != nil {
		fl.MaxBufferSizeBytes = *r.MaxBufferSizeBytes
	}
	if r.MinTimeBetweenFilePollsMillis != nil {
		fl.PollInterval = time.Duration(*r.MinTimeBetweenFilePollsMillis) * time.Millisecond
	}
	if r.SkipHeaderLines != nil {
		fl.SkipHeaderLines = *r.SkipHeaderLines
	}
	if r.TruncatedRecordTerminator != nil {
		fl.TruncatedRecordTerminator = *r.TruncatedRecordTerminator
	}
	if r.MaxRecordSizeBytes != nil {
		fl.MaxRecordSizeBytes = *r.MaxRecordSizeBytes
	}
	if r.DropUnparsedRecords != nil {
		fl.DropUnparsedRecords = bool(*r.DropUnparsedRecords)
	}
	if r.Aggregation != nil {
		fl.Aggregation = bool(*r.Aggregation)
	}
	if r.FollowSymlinks != nil {
		fl.FollowSymlinks = bool(*r.FollowSymlinks)
	}
	if r.Compression != "" {
		c, err := aggregation.ParseCompression(strings.ToLower(r.Compression))
		if err != nil {
			return Flow{}, fmt.Errorf("%s: compression %q: want NONE, GZIP or ZSTD", where, r.Compression)
		}
		if c != aggregation.None && !fl.Aggregation {
			return Flow{}, fmt.Errorf("%s: compression %s needs \"aggregation\": true", where, r.Compression)
		}
		fl.Compression = c
	}
	if r.MultiLineStartPattern != "" {
		re, err := regexp.Compile(r.MultiLineStartPattern)
		if err != nil {
			return Flow{}, fmt.Errorf("%s: multiLineStartPattern: %w", where, err)
		}
		fl.MultiLineStartPattern = re
	}
	for j, ro := range r.DataProcessingOptions {
		o, err := parseOption(ro, fmt.Sprintf("%s.dataProcessingOptions[%d]", where, j))
		if err != nil {
			return Flow{}, err
		}
		fl.Processing = append(fl.Processing, o)
	}
	if err := fl.validate(where); err != nil {
		return Flow{}, err
	}
	return fl, nil
}

func parseOption(b []byte, where string) (Option, error) {
	var r rawOption
	if err := decodeStrict(b, &r, where); err != nil {
		return Option{}, err
	}
	o := Option{Name: r.OptionName, CustomFieldNames: r.CustomFieldNames, LogFormat: r.LogFormat, Metadata: r.Metadata}
	if r.Timestamp != nil {
		o.Timestamp = bool(*r.Timestamp)
	}
	if r.Delimiter != nil {
		o.Delimiter = *r.Delimiter
	}
	// Keys that belong to another option are mistakes worth reporting.
	extra := func(key string, set bool) error {
		if set {
			return fmt.Errorf("%s: key %q does not apply to optionName %s", where, key, o.Name)
		}
		return nil
	}
	var err error
	switch o.Name {
	case OptSingleLine:
		err = errors.Join(extra("customFieldNames", r.CustomFieldNames != nil), extra("delimiter", r.Delimiter != nil),
			extra("logFormat", r.LogFormat != ""), extra("matchPattern", r.MatchPattern != ""),
			extra("timestamp", r.Timestamp != nil), extra("metadata", r.Metadata != nil))
	case OptCSVToJSON:
		err = errors.Join(extra("logFormat", r.LogFormat != ""), extra("matchPattern", r.MatchPattern != ""),
			extra("timestamp", r.Timestamp != nil), extra("metadata", r.Metadata != nil))
		if err == nil && len(o.CustomFieldNames) == 0 {
			err = fmt.Errorf("%s: CSVTOJSON needs customFieldNames", where)
		}
		if o.Delimiter == "" {
			o.Delimiter = ","
		}
		if err == nil && len([]rune(o.Delimiter)) != 1 {
			err = fmt.Errorf("%s: delimiter must be one character, got %q", where, o.Delimiter)
		}
	case OptLogToJSON:
		err = errors.Join(extra("delimiter", r.Delimiter != nil), extra("timestamp", r.Timestamp != nil), extra("metadata", r.Metadata != nil))
		switch o.LogFormat {
		case FormatCommonApache, FormatCombinedApache, FormatApacheError, FormatSyslog, FormatRFC3339Syslog:
		case "":
			err = errors.Join(err, fmt.Errorf("%s: LOGTOJSON needs logFormat", where))
		default:
			err = errors.Join(err, fmt.Errorf("%s: unknown logFormat %q (want COMMONAPACHELOG, COMBINEDAPACHELOG, APACHEERRORLOG, SYSLOG or RFC3339SYSLOG)", where, o.LogFormat))
		}
		if r.MatchPattern != "" {
			re, cerr := regexp.Compile(r.MatchPattern)
			if cerr != nil {
				err = errors.Join(err, fmt.Errorf("%s: matchPattern: %w", where, cerr))
			} else {
				o.MatchPattern = re
				if len(o.CustomFieldNames) == 0 {
					err = errors.Join(err, fmt.Errorf("%s: matchPattern needs customFieldNames", where))
				} else if re.NumSubexp() != len(o.CustomFieldNames) {
					err = errors.Join(err, fmt.Errorf("%s: matchPattern has %d groups but customFieldNames has %d names", where, re.NumSubexp(), len(o.CustomFieldNames)))
				}
			}
		}
	case OptAddMetadata:
		err = errors.Join(extra("customFieldNames", r.CustomFieldNames != nil), extra("delimiter", r.Delimiter != nil),
			extra("logFormat", r.LogFormat != ""), extra("matchPattern", r.MatchPattern != ""))
	case "":
		err = fmt.Errorf("%s: optionName is missing", where)
	default:
		err = fmt.Errorf("%s: unknown optionName %q (want SINGLELINE, CSVTOJSON, LOGTOJSON or ADDMETADATA)", where, o.Name)
	}
	return o, err
}

// endpointURL checks the value of an endpoint key and returns the URL to
// use: "" stays "" (the AWS config chain's endpoint), a host name without a
// scheme, as AWS's documentation writes the endpoints
// (kinesis.us-east-1.amazonaws.com), is an https URL, and otherwise the
// value must be an http or https URL with a host. Messages show the URL
// with its password, if any, redacted.
func endpointURL(key, v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if !strings.Contains(v, "://") {
		v = "https://" + v
	}
	u, err := url.Parse(v)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the message without the URL, which may hold a password
		}
		return "", fmt.Errorf("agent.json: %s is not a URL: %w", key, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("agent.json: %s %q: want an http or https URL", key, u.Redacted())
	case u.Hostname() == "":
		return "", fmt.Errorf("agent.json: %s %q: no host", key, u.Redacted())
	case u.Port() != "" && !validPort(u.Port()):
		return "", fmt.Errorf("agent.json: %s %q: port %q is not a number from 1 to 65535", key, u.Redacted(), u.Port())
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("agent.json: %s %q: an endpoint has no query or fragment", key, u.Redacted())
	}
	return v, nil
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// streamNameChars is what the Kinesis and Firehose APIs allow in a stream
// name: letters, digits, underscore, period and hyphen ([a-zA-Z0-9_.-]+).
var streamNameChars = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)

// Longest names: a Kinesis data stream's is 1 to 128 characters, a
// Firehose delivery stream's 1 to 64 (the APIs' StreamName and
// DeliveryStreamName constraints).
const (
	maxStreamName         = 128
	maxDeliveryStreamName = 64
)

// checkStreamName reports why name (the value of key) cannot name a stream
// of at most max characters; a kinesisStream may also be a stream ARN.
func checkStreamName(where, key, name string, max int) error {
	if key == "kinesisStream" && strings.HasPrefix(name, "arn:") {
		ref, err := streamref.Parse(name)
		if err != nil {
			return fmt.Errorf("%s: kinesisStream: %w", where, err)
		}
		name = ref.ShortName()
	}
	if len(name) > max || !streamNameChars.MatchString(name) {
		return fmt.Errorf("%s: %s %q: a stream name is 1 to %d letters, digits, '_', '.' or '-'", where, key, name, max)
	}
	return nil
}

// Validate reports the first problem with f.
func (f *File) Validate() error {
	if len(f.Flows) == 0 {
		return errors.New("agent.json: flows: at least one flow is required")
	}
	if f.ShutdownTimeout < 0 {
		return errors.New("agent.json: shutdownTimeoutMillis must not be negative")
	}
	if (f.AccessKeyID == "") != (f.SecretAccessKey == "") {
		return errors.New("agent.json: awsAccessKeyId and awsSecretAccessKey must be given together")
	}
	seen := map[string]int{}
	for i := range f.Flows {
		if err := f.Flows[i].validate(fmt.Sprintf("flows[%d]", i)); err != nil {
			return err
		}
		id := f.Flows[i].ID()
		if j, ok := seen[id]; ok {
			return fmt.Errorf("flows[%d]: same filePattern and stream as flows[%d]", i, j)
		}
		seen[id] = i
	}
	return nil
}

func (fl *Flow) validate(where string) error {
	switch {
	case fl.FilePattern == "":
		return fmt.Errorf("%s: filePattern is required", where)
	case !filepath.IsAbs(fl.FilePattern):
		return fmt.Errorf("%s: filePattern %q must be an absolute path", where, fl.FilePattern)
	case fl.Stream == "" && fl.DeliveryStream == "":
		return fmt.Errorf("%s: kinesisStream or deliveryStream is required", where)
	case fl.Stream != "" && fl.DeliveryStream != "":
		return fmt.Errorf("%s: kinesisStream and deliveryStream are both set; a flow sends to one stream", where)
	case fl.AssumeRoleExternalID != "" && fl.AssumeRoleARN == "":
		return fmt.Errorf("%s: assumeRoleExternalId needs assumeRoleARN", where)
	}
	if fl.Stream != "" {
		if err := checkStreamName(where, "kinesisStream", fl.Stream, maxStreamName); err != nil {
			return err
		}
	} else if err := checkStreamName(where, "deliveryStream", fl.DeliveryStream, maxDeliveryStreamName); err != nil {
		return err
	}
	if err := fl.validateFirehose(where); err != nil {
		return err
	}
	if _, err := filepath.Match(fl.FilePattern, ""); err != nil {
		return fmt.Errorf("%s: filePattern %q: %w", where, fl.FilePattern, err)
	}
	if strings.ContainsAny(filepath.Dir(fl.FilePattern), "*?[") {
		return fmt.Errorf("%s: filePattern %q: wildcards are allowed in the file name only, not in directories", where, fl.FilePattern)
	}
	switch fl.PartitionKeyOption {
	case PartitionKeyRandom, PartitionKeyDeterministic:
		if fl.PartitionKeyField != "" || fl.PartitionKeyPattern != nil {
			return fmt.Errorf("%s: partitionKeyField and partitionKeyPattern need partitionKeyOption FIELD or REGEX", where)
		}
	case PartitionKeyField:
		if fl.PartitionKeyField == "" || fl.PartitionKeyPattern != nil {
			return fmt.Errorf("%s: partitionKeyOption FIELD needs partitionKeyField (and no partitionKeyPattern)", where)
		}
	case PartitionKeyRegex:
		if fl.PartitionKeyPattern == nil || fl.PartitionKeyField != "" {
			return fmt.Errorf("%s: partitionKeyOption REGEX needs partitionKeyPattern (and no partitionKeyField)", where)
		}
	default:
		return fmt.Errorf("%s: partitionKeyOption %q: want RANDOM, DETERMINISTIC, FIELD or REGEX", where, fl.PartitionKeyOption)
	}
	switch fl.InitialPosition {
	case StartOfFile, EndOfFile:
	default:
		return fmt.Errorf("%s: initialPosition %q: want START_OF_FILE or END_OF_FILE", where, fl.InitialPosition)
	}
	switch fl.LongLineAction {
	case LongLineTruncate, LongLineSplit:
	default:
		return fmt.Errorf("%s: longLineAction %q: want TRUNCATE or SPLIT", where, fl.LongLineAction)
	}
	switch {
	case fl.MaxBufferAge < time.Millisecond || fl.MaxBufferAge > 15*time.Minute:
		return fmt.Errorf("%s: maxBufferAgeMillis must be between 1 and 900000", where)
	case fl.MaxBufferSizeRecords < 1 || fl.MaxBufferSizeRecords > 500:
		return fmt.Errorf("%s: maxBufferSizeRecords must be between 1 and 500", where)
	case fl.MaxBufferSizeBytes < 1 || fl.MaxBufferSizeBytes > 5<<20:
		return fmt.Errorf("%s: maxBufferSizeBytes must be between 1 and 5242880", where)
	case fl.PollInterval < time.Millisecond || fl.PollInterval > time.Second:
		return fmt.Errorf("%s: minTimeBetweenFilePollsMillis must be between 1 and 1000 (new files must be seen within 1 s)", where)
	case fl.SkipHeaderLines < 0:
		return fmt.Errorf("%s: skipHeaderLines must not be negative", where)
	case fl.MaxRecordSizeBytes < 16 || fl.MaxRecordSizeBytes > 5<<20-256:
		// A record and its partition key must fit one 5 MiB PutRecords request.
		return fmt.Errorf("%s: maxRecordSizeBytes must be between 16 and 5242624", where)
	case len(fl.TruncatedRecordTerminator) >= fl.MaxRecordSizeBytes:
		return fmt.Errorf("%s: truncatedRecordTerminator is longer than maxRecordSizeBytes", where)
	}
	return nil
}

// validateFirehose checks the limits of a deliveryStream flow: Firehose
// takes at most 500 records and 4 MiB per PutRecordBatch call and records
// of at most 1,000 KiB, has no partition keys and no KPL aggregation.
func (fl *Flow) validateFirehose(where string) error {
	if !fl.Firehose() {
		return nil
	}
	switch {
	case fl.Aggregation || fl.Compression != aggregation.None:
		return fmt.Errorf("%s: aggregation and compression apply to kinesisStream flows, not deliveryStream", where)
	case fl.PartitionKeyOption != "" && fl.PartitionKeyOption != PartitionKeyRandom:
		return fmt.Errorf("%s: partitionKeyOption applies to kinesisStream flows: Firehose records have no partition key", where)
	case fl.MaxBufferSizeBytes > 4<<20:
		return fmt.Errorf("%s: maxBufferSizeBytes must be at most 4194304 for a deliveryStream (PutRecordBatch takes 4 MiB)", where)
	case fl.MaxRecordSizeBytes > DefaultFirehoseMaxRecordSize:
		return fmt.Errorf("%s: maxRecordSizeBytes must be at most 1024000 for a deliveryStream (Firehose takes records of 1,000 KiB)", where)
	}
	return nil
}
