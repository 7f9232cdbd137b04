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
		{`{"flows":[{"filePattern":"/a","deliveryStream":"f"}]}`, `deliveryStream (Amazon Data Firehose) is not supported`},
		{`{"flows":[]}`, `at least one flow`},
		{`{"flows":[{"filePattern":"a.log","kinesisStream":"s"}]}`, `absolute`},
		{`{"flows":[{"filePattern":"/a/*/x.log","kinesisStream":"s"}]}`, `file name only`},
		{`{"flows":[{"filePattern":"/a"}]}`, `kinesisStream is required`},
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
