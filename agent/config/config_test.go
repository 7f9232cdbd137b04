package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

const awsSample = `{
  "checkpointFile": "/tmp/cp.json",
  "kinesis.endpoint": "https://kinesis.us-east-1.amazonaws.com",
  "kinesis.region": "us-east-1",
  "cloudwatch.emitMetrics": true,
  "shutdownTimeoutMillis": 5000,
  "flows": [
    {
      "filePattern": "/var/log/app/*.log",
      "kinesisStream": "app",
      "partitionKeyOption": "DETERMINISTIC",
      "initialPosition": "START_OF_FILE",
      "maxBufferAgeMillis": 2000,
      "maxBufferSizeRecords": 100,
      "maxBufferSizeBytes": 1048576,
      "skipHeaderLines": 1,
      "multiLineStartPattern": "^\\d{4}-",
      "truncatedRecordTerminator": "...\n",
      "dataProcessingOptions": [
        {"optionName": "SINGLELINE"},
        {"optionName": "CSVTOJSON", "customFieldNames": ["a", "b"], "delimiter": "\t"},
        {"optionName": "LOGTOJSON", "logFormat": "COMBINEDAPACHELOG"},
        {"optionName": "LOGTOJSON", "logFormat": "SYSLOG", "matchPattern": "^(\\w+) (.*)$", "customFieldNames": ["k", "v"]},
        {"optionName": "ADDMETADATA", "timestamp": "true", "metadata": {"env": "prod"}}
      ]
    },
    {"filePattern": "/var/log/b.log", "kinesisStream": "b", "aggregation": true, "compression": "ZSTD"}
  ]
}`

func TestParseAWSFile(t *testing.T) {
	f, err := Parse([]byte(awsSample))
	if err != nil {
		t.Fatal(err)
	}
	if f.CheckpointFile != "/tmp/cp.json" || f.KinesisEndpoint == "" || f.KinesisRegion != "us-east-1" || f.ShutdownTimeout != 5*time.Second {
		t.Errorf("globals: %+v", f)
	}
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "cloudwatch.emitMetrics") {
		t.Errorf("warnings: %q", f.Warnings)
	}
	fl := f.Flows[0]
	if fl.PartitionKeyOption != PartitionKeyDeterministic || fl.InitialPosition != StartOfFile ||
		fl.MaxBufferAge != 2*time.Second || fl.MaxBufferSizeRecords != 100 || fl.MaxBufferSizeBytes != 1<<20 ||
		fl.SkipHeaderLines != 1 || fl.MultiLineStartPattern == nil || fl.TruncatedRecordTerminator != "...\n" {
		t.Errorf("flow 0: %+v", fl)
	}
	if len(fl.Processing) != 5 || fl.Processing[1].Delimiter != "\t" || !fl.Processing[4].Timestamp ||
		fl.Processing[4].Metadata["env"] != "prod" || fl.Processing[3].MatchPattern == nil {
		t.Errorf("options: %+v", fl.Processing)
	}
	d := f.Flows[1]
	if !d.Aggregation || d.PartitionKeyOption != PartitionKeyRandom || d.InitialPosition != EndOfFile ||
		d.MaxBufferAge != time.Second || d.MaxBufferSizeRecords != 500 || d.PollInterval != 250*time.Millisecond ||
		d.TruncatedRecordTerminator != "\n" || d.MaxRecordSizeBytes != DefaultMaxRecordSize || d.LongLineAction != LongLineTruncate {
		t.Errorf("defaults: %+v", d)
	}
	if d.Compression != aggregation.Zstd || f.Flows[0].Compression != aggregation.None {
		t.Errorf("compression %v %v", d.Compression, f.Flows[0].Compression)
	}
	if f.Flows[1].ID() != "b:/var/log/b.log" {
		t.Errorf("ID %q", f.Flows[1].ID())
	}
}

func TestDefaults(t *testing.T) {
	f, err := Parse([]byte(`{"flows":[{"filePattern":"/a/*.log","kinesisStream":"s"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if f.CheckpointFile != DefaultCheckpointFile || f.ShutdownTimeout != 10*time.Second {
		t.Errorf("%+v", f)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s"}],"bogusKey":1}`, `unknown key "bogusKey"`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","fileFooter":1}]}`, `flows[0]: unknown key "fileFooter"`},
		{`{"flows":[{"filePattern":"/a","deliveryStream":"f","aggregation":true}]}`, `not deliveryStream`},
		{`{"flows":[{"filePattern":"/a","deliveryStream":"f","kinesisStream":"s"}]}`, `both set`},
		{`{"flows":[{"filePattern":"/a","deliveryStream":"f","partitionKeyOption":"DETERMINISTIC"}]}`, `no partition key`},
		{`{"flows":[{"filePattern":"/a","deliveryStream":"f","maxBufferSizeBytes":5242880}]}`, `at most 4194304`},
		{`{"flows":[{"filePattern":"/a","deliveryStream":"f","maxRecordSizeBytes":1048320}]}`, `at most 1024000`},
		{`{"assumeRoleExternalId":"x","flows":[{"filePattern":"/a","kinesisStream":"s"}]}`, `needs assumeRoleARN`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","assumeRoleExternalId":"x"}]}`, `needs assumeRoleARN`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","partitionKeyOption":"FIELD"}]}`, `needs partitionKeyField`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","partitionKeyOption":"REGEX","partitionKeyPattern":"a+"}]}`, `no capture group`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","partitionKeyOption":"REGEX","partitionKeyPattern":"("}]}`, `partitionKeyPattern`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","partitionKeyField":"host"}]}`, `need partitionKeyOption FIELD or REGEX`},
		{`{"flows":[]}`, `at least one flow`},
		{`{"flows":[{"filePattern":"a.log","kinesisStream":"s"}]}`, `absolute`},
		{`{"flows":[{"filePattern":"/a/*/x.log","kinesisStream":"s"}]}`, `file name only`},
		{`{"flows":[{"filePattern":"/a"}]}`, `kinesisStream or deliveryStream is required`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","partitionKeyOption":"X"}]}`, `partitionKeyOption`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","initialPosition":"X"}]}`, `initialPosition`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","maxBufferSizeRecords":501}]}`, `maxBufferSizeRecords`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","multiLineStartPattern":"("}]}`, `multiLineStartPattern`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","dataProcessingOptions":[{"optionName":"X"}]}]}`, `unknown optionName "X"`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","dataProcessingOptions":[{"optionName":"CSVTOJSON"}]}]}`, `needs customFieldNames`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","dataProcessingOptions":[{"optionName":"LOGTOJSON","logFormat":"NOPE"}]}]}`, `unknown logFormat`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","dataProcessingOptions":[{"optionName":"LOGTOJSON","logFormat":"SYSLOG","matchPattern":"(a)(b)","customFieldNames":["x"]}]}]}`, `2 groups`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","dataProcessingOptions":[{"optionName":"SINGLELINE","delimiter":","}]}]}`, `"delimiter" does not apply`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","dataProcessingOptions":[{"optionName":"SINGLELINE","bogus":1}]}]}`, `unknown key "bogus"`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s"},{"filePattern":"/a","kinesisStream":"s"}]}`, `same filePattern`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","aggregation":"yes"}]}`, `want true or false`},
		{`{"awsAccessKeyId":"x","flows":[{"filePattern":"/a","kinesisStream":"s"}]}`, `together`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s"}]} {}`, `trailing`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","compression":"LZMA","aggregation":true}]}`, `want NONE, GZIP or ZSTD`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","compression":"GZIP"}]}`, `needs "aggregation": true`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","maxRecordSizeBytes":10485760}]}`, `maxRecordSizeBytes must be between`},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Parse(%s) = %v, want error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestFirehoseRolesAndKeys(t *testing.T) {
	f, err := Parse([]byte(`{
		"firehose.endpoint": "https://firehose.us-east-1.amazonaws.com",
		"sts.endpoint": "https://sts.us-east-1.amazonaws.com",
		"assumeRoleARN": "arn:aws:iam::123456789012:role/shipper",
		"assumeRoleExternalId": "ext-1",
		"flows": [
			{"filePattern": "/var/log/a.log", "deliveryStream": "fh"},
			{"filePattern": "/var/log/b.log", "kinesisStream": "s", "assumeRoleARN": "arn:aws:iam::210987654321:role/other",
			 "partitionKeyOption": "FIELD", "partitionKeyField": "host"},
			{"filePattern": "/var/log/c.log", "kinesisStream": "s", "partitionKeyOption": "REGEX", "partitionKeyPattern": "user=(\\w+)"}
		]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Warnings) != 0 || f.FirehoseEndpoint == "" || f.STSEndpoint == "" {
		t.Errorf("file: %+v", f)
	}
	a, b, c := f.Flows[0], f.Flows[1], f.Flows[2]
	if !a.Firehose() || a.ID() != "firehose:fh:/var/log/a.log" || a.MaxRecordSizeBytes != DefaultFirehoseMaxRecordSize ||
		a.AssumeRoleARN != f.AssumeRoleARN || a.AssumeRoleExternalID != "ext-1" {
		t.Errorf("firehose flow: %+v", a)
	}
	if b.Firehose() || b.AssumeRoleARN != "arn:aws:iam::210987654321:role/other" || b.AssumeRoleExternalID != "" ||
		b.PartitionKeyOption != PartitionKeyField || b.PartitionKeyField != "host" {
		t.Errorf("flow with its own role: %+v", b)
	}
	if c.PartitionKeyPattern == nil || c.PartitionKeyPattern.String() != `user=(\w+)` || c.AssumeRoleARN != f.AssumeRoleARN {
		t.Errorf("regex flow: %+v", c)
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.json")
	if err := os.WriteFile(p, []byte(awsSample), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p + ".missing"); err == nil {
		t.Fatal("want error for a missing file")
	}
}

func TestStreamNamesAndEndpoints(t *testing.T) {
	flow := func(kv string) string {
		return `{"flows":[{"filePattern":"/var/log/a.log",` + kv + `}]}`
	}
	long := strings.Repeat("s", 129)
	for _, tc := range []struct{ cfg, want string }{
		{flow(`"kinesisStream":"my stream"`), `kinesisStream "my stream": a stream name is 1 to 128`},
		{flow(`"kinesisStream":"logs/app"`), `kinesisStream "logs/app"`},
		{flow(`"kinesisStream":"` + long + `"`), `a stream name is 1 to 128`},
		{flow(`"kinesisStream":"arn:aws:kinesis:us-east-1:123456789012:stream/bad name"`), `kinesisStream "bad name"`},
		{flow(`"kinesisStream":"arn:aws:sqs:us-east-1:123456789012:q"`), `not a Kinesis stream ARN`},
		{flow(`"deliveryStream":"` + strings.Repeat("d", 65) + `"`), `deliveryStream "ddd`},
		{flow(`"deliveryStream":"a*b"`), `a stream name is 1 to 64`},
		{`{"kinesis.endpoint":"http://[::1","flows":[]}`, `kinesis.endpoint is not a URL`},
		{`{"kinesis.endpoint":"ftp://host","flows":[]}`, `want an http or https URL`},
		{`{"firehose.endpoint":"http://","flows":[]}`, `firehose.endpoint "http:": no host`},
		{`{"kinesis.endpoint":"http://h:99999","flows":[]}`, `port "99999"`},
		{`{"kinesis.endpoint":"http://h:x","flows":[]}`, `kinesis.endpoint is not a URL`},
		{`{"sts.endpoint":"https://h/?a=b","flows":[]}`, `no query or fragment`},
		{`{"kinesis.endpoint":"https://u:hunter2@h:1/x y?q","flows":[]}`, `kinesis.endpoint`},
	} {
		_, err := Parse([]byte(tc.cfg))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.cfg, err, tc.want)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error shows the password: %v", tc.cfg, err)
		}
	}

	ok := `{"kinesis.endpoint":"kinesis.eu-west-1.amazonaws.com","firehose.endpoint":"http://127.0.0.1:4573",
		"flows":[{"filePattern":"/var/log/a.log","kinesisStream":"A-z_0.9"},
		{"filePattern":"/var/log/a.log","kinesisStream":"arn:aws:kinesis:us-east-1:123456789012:stream/` + long[:128] + `"},
		{"filePattern":"/var/log/a.log","deliveryStream":"` + strings.Repeat("d", 64) + `","followSymlinks":true}]}`
	f, err := Parse([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if f.KinesisEndpoint != "https://kinesis.eu-west-1.amazonaws.com" || f.FirehoseEndpoint != "http://127.0.0.1:4573" {
		t.Errorf("endpoints %q, %q; want a host without scheme taken as https", f.KinesisEndpoint, f.FirehoseEndpoint)
	}
	if f.Flows[0].FollowSymlinks || !f.Flows[2].FollowSymlinks {
		t.Errorf("followSymlinks: %v, %v; want false by default, true when set", f.Flows[0].FollowSymlinks, f.Flows[2].FollowSymlinks)
	}
}
