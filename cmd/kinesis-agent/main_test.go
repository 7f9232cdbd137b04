package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/agent/offsets"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

func runCmd(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(args, &out, &out, make(chan os.Signal))
	return code, out.String()
}

func writeConfig(t testing.TB, v any) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.json")
	var b []byte
	if s, ok := v.(string); ok {
		b = []byte(s)
	} else {
		var err error
		if b, err = json.MarshalIndent(v, "", "  "); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	if code, out := runCmd(t, "-check", "-config", "agent.json.sample"); code != 0 || !strings.Contains(out, "ok (3 flows)") {
		t.Fatalf("sample: %d %s", code, out)
	}
	for _, tc := range []struct{ cfg, want string }{
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","typo":1}]}`, `unknown key "typo"`},
		{`{"flows":[{"filePattern":"/a","deliveryStream":"fh","aggregation":true}]}`, `not deliveryStream`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"s","dataProcessingOptions":[{"optionName":"LOGTOJSON","logFormat":"SYSLOG","customFieldNames":["a"]}]}]}`, `5 fields but 1 names`},
		{`not json`, `invalid character`},
		{`{"flows":[{"filePattern":"/a","kinesisStream":"no spaces"}]}`, `kinesisStream "no spaces": a stream name is 1 to 128 letters`},
		{`{"kinesis.endpoint":"garbage://x","flows":[{"filePattern":"/a","kinesisStream":"s"}]}`, `kinesis.endpoint "garbage://x": want an http or https URL`},
	} {
		code, out := runCmd(t, "-check", "-config", writeConfig(t, tc.cfg))
		if code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%s: exit %d, output %q; want 1 and %q", tc.cfg, code, out, tc.want)
		}
	}
	if code, _ := runCmd(t, "-check", "-config", filepath.Join(t.TempDir(), "missing.json")); code != 1 {
		t.Error("missing file accepted")
	}
	if code, _ := runCmd(t, "-bogus"); code != 2 {
		t.Error("bad flag accepted")
	}
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// buildAgent builds the command once per test binary, into a temporary
// directory.
func buildAgent(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "kinesis-agent-test"); buildErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(buildDir, "kinesis-agent"), ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "kinesis-agent")
}

// process is a running kinesis-agent.
type process struct {
	t    testing.TB
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan error
}

func startAgentProcess(t testing.TB, bin, cfg string, env ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, "-config", cfg)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_REGION=us-east-1")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{t: t, cmd: cmd, done: make(chan error, 1)}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		<-copied
		p.done <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("agent logs:\n%s", p.log())
		}
	})
	return p
}

func (p *process) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// stop sends sig and waits for the exit, returning the exit error.
func (p *process) stop(sig syscall.Signal) error {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err // for Cleanup
		return err
	case <-time.After(30 * time.Second):
		p.t.Fatalf("agent did not exit on %v", sig)
		return nil
	}
}

// reader reads every shard of a stream from its start, deaggregating.
type reader struct {
	t      *testing.T
	client *kinesis.Client
	stream string
	iters  map[string]*string
	counts map[string]int // user record data -> times seen
	total  int
}

func newReader(t *testing.T, client *kinesis.Client, stream string) *reader {
	return &reader{t: t, client: client, stream: stream, iters: map[string]*string{}, counts: map[string]int{}}
}

// poll reads what is new on every shard.
func (r *reader) poll(ctx context.Context) {
	r.t.Helper()
	shards, err := r.client.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(r.stream)})
	if err != nil {
		r.t.Logf("ListShards: %v", err)
		return
	}
	for _, s := range shards.Shards {
		id := aws.ToString(s.ShardId)
		if _, ok := r.iters[id]; !ok {
			it, err := r.client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(r.stream), ShardId: s.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
			if err != nil {
				r.t.Logf("GetShardIterator: %v", err)
				continue
			}
			r.iters[id] = it.ShardIterator
		}
		for r.iters[id] != nil {
			out, err := r.client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: r.iters[id]})
			if err != nil {
				r.t.Logf("GetRecords: %v", err)
				break
			}
			r.iters[id] = out.NextShardIterator
			for _, rec := range out.Records {
				if urs, ok := aggregation.Decode(rec.Data); ok {
					for _, u := range urs {
						r.counts[string(u.Data)]++
						r.total++
					}
				} else {
					r.counts[string(rec.Data)]++
					r.total++
				}
			}
			if len(out.Records) == 0 {
				break
			}
		}
	}
}

// waitAll polls until every want is seen or the deadline passes.
func (r *reader) waitAll(want []string, d time.Duration) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	defer cancel()
	deadline := time.Now().Add(d)
	for {
		r.poll(ctx)
		missing := 0
		first := ""
		for _, w := range want {
			if r.counts[w] == 0 {
				if missing == 0 {
					first = w
				}
				missing++
			}
		}
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%d of %d records never read back from the stream (first: %q)", missing, len(want), first)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func appendLines(t *testing.T, path string, lines []string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.WriteString(f, strings.Join(lines, "")); err != nil {
		t.Fatal(err)
	}
}

func numbered(prefix string, from, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %06d\n", prefix, from+i)
	}
	return out
}

func TestShipsReloadsAndStops(t *testing.T) {
	client, stream := testenv.NewStream(t, 1)
	ep := testenv.Require(t)
	bin := buildAgent(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "app.log")
	appendLines(t, logPath, numbered("first", 0, 50))
	cp := filepath.Join(dir, "state", "checkpoints.json")
	flow := map[string]any{"filePattern": logPath, "kinesisStream": stream, "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 100}
	// The endpoint comes from AWS_ENDPOINT_URL_KINESIS here, not the file.
	cfgPath := writeConfig(t, map[string]any{"checkpointFile": cp, "metrics.listen": "127.0.0.1:0", "flows": []any{flow}})
	p := startAgentProcess(t, bin, cfgPath, "AWS_ENDPOINT_URL_KINESIS="+ep.Kinesis)

	r := newReader(t, client, stream)
	r.waitAll(numbered("first", 0, 50), 30*time.Second)

	// Prometheus metrics on the listen address the log names.
	m := regexp.MustCompile(`"msg":"metrics","listen":"([^"]+)"`).FindStringSubmatch(p.log())
	if m == nil {
		t.Fatalf("no metrics address logged")
	}
	wait.For(t, 10*time.Second, "records_sent_total 50", func() bool {
		resp, err := http.Get("http://" + m[1] + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), `kinesis_agent_records_sent_total{flow="`+stream+":"+logPath+`"} 50`) &&
			strings.Contains(string(body), "kinesis_kpl_")
	})

	// Reload with a processing option added: position is kept.
	flow["dataProcessingOptions"] = []any{map[string]any{"optionName": "ADDMETADATA", "metadata": map[string]any{"host": "h1"}}}
	b, _ := json.Marshal(map[string]any{"checkpointFile": cp, "flows": []any{flow}})
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	wait.For(t, 10*time.Second, "reload", func() bool { return strings.Count(p.log(), `"msg":"running"`) >= 2 })
	appendLines(t, logPath, numbered("second", 0, 20))
	var want []string
	for _, l := range numbered("second", 0, 20) {
		want = append(want, fmt.Sprintf(`{"metadata":{"host":"h1"},"data":%q}`+"\n", strings.TrimSuffix(l, "\n")))
	}
	r.waitAll(want, 30*time.Second)
	if r.total != 70 {
		t.Errorf("read %d records, want 70 (a reload must not resend)", r.total)
	}

	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
	st, err := offsets.Open(cp)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(logPath)
	e := st.Get(stream + ":" + logPath)
	if len(e) != 1 || e[0].Offset != fi.Size() {
		t.Fatalf("saved offsets %+v, want one at %d", e, fi.Size())
	}
	if !strings.Contains(p.log(), `"msg":"progress"`) {
		t.Error("no progress line logged")
	}
}

func TestEndpointFromConfigFile(t *testing.T) {
	client, stream := testenv.NewStream(t, 1)
	ep := testenv.Require(t)
	bin := buildAgent(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "x.log")
	appendLines(t, logPath, numbered("cfg", 0, 10))
	cfgPath := writeConfig(t, map[string]any{
		"checkpointFile": filepath.Join(dir, "cp.json"), "kinesis.endpoint": ep.Kinesis, "kinesis.region": "us-east-1",
		"flows": []any{map[string]any{"filePattern": logPath, "kinesisStream": stream, "initialPosition": "START_OF_FILE", "aggregation": true, "compression": "ZSTD"}},
	})
	// A wrong endpoint in the environment: the file's wins.
	p := startAgentProcess(t, bin, cfgPath, "AWS_ENDPOINT_URL_KINESIS=http://127.0.0.1:1", "AWS_ENDPOINT_URL=http://127.0.0.1:1")
	newReader(t, client, stream).waitAll(numbered("cfg", 0, 10), 30*time.Second)
	if err := p.stop(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
}

// metric returns the value of the kinesis_agent_ series name of flow that
// the process serves on the metrics address it logged, and whether it is
// there.
func (p *process) metric(name, flow string) (float64, bool) {
	return p.series(name, `flow="`+flow+`"`)
}

// series returns the value of the kinesis_agent_ series name with exactly
// labels (as Prometheus writes them: sorted by name, comma-separated).
func (p *process) series(name, labels string) (float64, bool) {
	m := regexp.MustCompile(`"msg":"metrics","listen":"([^"]+)"`).FindStringSubmatch(p.log())
	if m == nil {
		return 0, false
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, false
	}
	prefix := "kinesis_agent_" + name + "{" + labels + "} "
	for _, l := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(l, prefix); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err == nil {
				return f, true
			}
		}
	}
	return 0, false
}
