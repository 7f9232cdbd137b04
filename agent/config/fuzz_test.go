package config_test

import (
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/process"
)

var validName = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// FuzzParse feeds agent.json texts to Parse, seeded with the sample
// configurations of cmd/kinesis-agent: it must not panic, and a file it
// accepts must hold what the rest of the agent relies on (flows with
// absolute patterns, valid stream names and endpoints, settings within
// their bounds, and processing options that build or fail without
// panicking).
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("..", "..", "cmd", "kinesis-agent", "testdata", "aws", "*.json"))
	seeds = append(seeds, filepath.Join("..", "..", "cmd", "kinesis-agent", "agent.json.sample"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"flows":[{"filePattern":"/var/log/a.log","kinesisStream":"s","followSymlinks":"true"}]}`,
		`{"kinesis.endpoint":"kinesis.us-east-1.amazonaws.com","flows":[{"filePattern":"/a/*.log","deliveryStream":"d"}]}`,
		`{"flows":[{"filePattern":"/a","kinesisStream":"arn:aws:kinesis:us-east-1:1:stream/s","partitionKeyOption":"REGEX","partitionKeyPattern":"u=(\\w+)"}]}`,
		`{"flows":[{"filePattern":"/a","kinesisStream":"s","dataProcessingOptions":[{"optionName":"CSVTOJSON","customFieldNames":["a"],"delimiter":"|"}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := config.Parse(b)
		if err != nil {
			if file != nil {
				t.Fatalf("Parse returned a file with the error %v", err)
			}
			return
		}
		if err := file.Validate(); err != nil {
			t.Fatalf("Parse accepted a file Validate refuses: %v", err)
		}
		if len(file.Flows) == 0 || file.CheckpointFile == "" || file.ShutdownTimeout < 0 {
			t.Fatalf("accepted: %d flows, checkpoint file %q, shutdown timeout %v", len(file.Flows), file.CheckpointFile, file.ShutdownTimeout)
		}
		for _, ep := range []string{file.KinesisEndpoint, file.FirehoseEndpoint, file.STSEndpoint} {
			if ep == "" {
				continue
			}
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
				t.Fatalf("accepted endpoint %q", ep)
			}
		}
		for i, fl := range file.Flows {
			name := fl.Stream
			if fl.Firehose() {
				name = fl.DeliveryStream
			} else if strings.HasPrefix(name, "arn:") {
				name = name[strings.Index(name, ":stream/")+len(":stream/"):]
			}
			if (fl.Stream == "") == (fl.DeliveryStream == "") || !validName.MatchString(name) || (fl.Firehose() && len(name) > 64) {
				t.Fatalf("flow %d: stream %q, delivery stream %q accepted", i, fl.Stream, fl.DeliveryStream)
			}
			if !filepath.IsAbs(fl.FilePattern) || fl.ID() == "" {
				t.Fatalf("flow %d: filePattern %q accepted", i, fl.FilePattern)
			}
			if fl.MaxRecordSizeBytes < 16 || len(fl.TruncatedRecordTerminator) >= fl.MaxRecordSizeBytes ||
				fl.MaxBufferSizeRecords < 1 || fl.MaxBufferSizeRecords > 500 || fl.PollInterval <= 0 || fl.MaxBufferAge <= 0 {
				t.Fatalf("flow %d: limits out of bounds accepted: %+v", i, fl)
			}
			if chain, err := process.New(fl.Processing); err == nil {
				_, _ = chain.Apply([]byte("a,b\n"))
			}
		}
	})
}
