package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

// awsSamples are configurations in the shape of AWS's Kinesis Agent
// documentation: a single Kinesis flow, a Firehose flow, several flows with
// processing options, an assumed role.
var awsSamples = []string{"kinesis.json", "firehose.json", "multi-flow.json", "assumed-role.json"}

func TestAWSSamplesCheck(t *testing.T) {
	for _, name := range awsSamples {
		code, out := runCmd(t, "-check", "-config", filepath.Join("testdata", "aws", name))
		if code != 0 || !strings.Contains(out, ": ok (") {
			t.Errorf("%s: exit %d: %s", name, code, out)
		}
	}
}

// sampleLines are the lines written to a sample's file, by the file's base
// name, and how many records they make.
func sampleLines(base string) (string, int) {
	var b strings.Builder
	switch base {
	case "app2.log": // COMMONAPACHELOG
		for i := range 20 {
			fmt.Fprintf(&b, "10.0.0.%d - frank [10/Oct/2000:13:55:36 -0700] \"GET /p%d HTTP/1.0\" 200 %d\n", i, i, 100+i)
		}
		return b.String(), 20
	case "app3.log": // multi-line, tab-separated
		for i := range 20 {
			fmt.Fprintf(&b, "[SEQUENCE=%d]\tsecond\tthird\n  continued %d\n", i, i)
		}
		// The last record ends when maxBufferAgeMillis passes without a new line.
		return b.String(), 20
	}
	for i := range 20 {
		fmt.Fprintf(&b, "%s line %d\n", base, i)
	}
	return b.String(), 20
}

// TestAWSSamplesRun runs each sample through the proxy, its endpoints, file
// paths and stream names pointed at the bench (and files read from their
// start), and checks that each flow's records arrive.
func TestAWSSamplesRun(t *testing.T) {
	bin := buildAgent(t)
	const role, external = "arn:aws:iam::123456789012:role/kinesis-agent-writer", "my-external-id"
	for _, name := range awsSamples {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "aws", name))
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			streams := map[string]string{}   // sample's stream name -> emulator stream
			wantKinesis := map[string]int{}  // emulator stream -> records
			wantFirehose := map[string]int{} // delivery stream -> records
			files := map[string]string{}     // path -> contents
			require := map[string]string{}
			var client = testenv.KinesisClient(t)
			for _, raw := range doc["flows"].([]any) {
				fl := raw.(map[string]any)
				base := strings.TrimSuffix(filepath.Base(fl["filePattern"].(string)), "*")
				fl["filePattern"] = filepath.Join(dir, base) + "*"
				fl["initialPosition"] = "START_OF_FILE"
				fl["maxBufferAgeMillis"] = 200
				lines, n := sampleLines(base)
				files[filepath.Join(dir, base)] = lines
				if s, ok := fl["kinesisStream"].(string); ok {
					if streams[s] == "" {
						streams[s] = testenv.CreateStream(t, client, 1)
					}
					fl["kinesisStream"] = streams[s]
					wantKinesis[streams[s]] += n
					if doc["assumeRoleARN"] != nil {
						require[streams[s]] = "ASIAWRITER"
					}
				} else {
					wantFirehose[fl["deliveryStream"].(string)] += n
				}
			}
			px := proxy.StartForTest(t, proxy.Config{
				STS:              &proxy.STSConfig{Roles: map[string]proxy.STSRole{role: {ExternalID: external, AccessKeyID: "ASIAWRITER"}}},
				Firehose:         &proxy.FirehoseConfig{Dir: t.TempDir()},
				RequireAccessKey: require,
			})
			for _, k := range []string{"kinesis.endpoint", "firehose.endpoint", "sts.endpoint"} {
				if _, ok := doc[k]; ok {
					doc[k] = px.URL()
				}
			}
			doc["checkpointFile"] = filepath.Join(dir, "cp.json")
			for path, lines := range files {
				if err := os.WriteFile(path, []byte(lines), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			// Endpoints the sample leaves empty come from the environment.
			p := startAgentProcess(t, bin, writeConfig(t, doc),
				"AWS_ENDPOINT_URL_KINESIS="+px.URL(), "AWS_ENDPOINT_URL_FIREHOSE="+px.URL(), "AWS_ENDPOINT_URL_STS="+px.URL())
			for stream, n := range wantKinesis {
				r := newReader(t, client, stream)
				wait.For(t, 30*time.Second, fmt.Sprintf("%d records in %s", n, stream), func() bool {
					r.poll(t.Context())
					return r.total >= n
				})
				if r.total != n {
					t.Errorf("%s: %d records, want %d", stream, r.total, n)
				}
			}
			for ds, n := range wantFirehose {
				wait.For(t, 30*time.Second, fmt.Sprintf("%d records in %s", n, ds), func() bool { return px.FirehoseDelivered(ds) >= int64(n) })
			}
			if px.AccessDenied() != 0 {
				t.Errorf("%d calls signed with the wrong credentials", px.AccessDenied())
			}
			if doc["assumeRoleARN"] != nil && px.AssumeRoleCalls() == 0 {
				t.Error("the role was never assumed")
			}
			if err := p.stop(syscall.SIGTERM); err != nil {
				t.Fatalf("exit after SIGTERM: %v", err)
			}
		})
	}
}
