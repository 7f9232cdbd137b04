// Package e2e runs the whole system end to end on one machine: a web access
// log written and rotated, kinesis-agent shipping it through the fault
// proxy into a Kinesis stream, and several kinesis-demo-consumer processes
// sharing the stream's shards through a lease table, while a worker is
// killed with SIGKILL and shards are split and merged. At the end it counts
// what the consumers wrote: every line sent must have been consumed.
//
// make demo runs it with a live status view (integration/cmd/kinesis-demo);
// the package's test runs a shorter version as part of make test.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/internal/hashkey"
	"github.com/kinesisgo/kinesis/lease"
)

// Config describes one run. Zero fields take the defaults given.
type Config struct {
	// KinesisURL and DynamoDBURL are the emulators' endpoints. Required.
	KinesisURL, DynamoDBURL string
	// Dir holds everything the run writes: the log files, the agent's
	// config and offsets, the consumers' output, every process's log.
	// Required.
	Dir string
	// BinDir holds kinesis-agent and kinesis-demo-consumer. Default: they
	// are built into Dir/bin (see Build).
	BinDir string

	// Lines is how many log lines are written. Default 12,000.
	Lines int
	// Rate is how many lines are written per second. Default 200.
	Rate int
	// Shards is the stream's shard count. Default 4.
	Shards int
	// Workers is the number of consumer processes. Default 3.
	Workers int
	// FailoverTime is the consumers' lease failover time. Default 10s.
	FailoverTime time.Duration
	// Rotations is how often the log is rotated (by rename) while written,
	// evenly spread. Default 0.
	Rotations int
	// KillAt, SplitAt and MergeAt are the share of the lines written (0 to
	// 1) after which the busiest worker is killed with SIGKILL, the first
	// shard split and the last two shards merged. 0: not done.
	KillAt, SplitAt, MergeAt float64
	// Faults turns on light faults in the proxy: 1% InternalFailure
	// entries and 0.5% HTTP 500s on Kinesis, 1% throttling on DynamoDB, and
	// a read limit of 2 GetRecords calls/s per shard instead of 5 (as if
	// other applications read the stream too), which throttles the
	// consumers now and then. The proxy's per-shard limits are on either
	// way.
	Faults bool
	// DrainTimeout bounds the wait, once every line is written, for the
	// consumers to have consumed them all. Default 90s.
	DrainTimeout time.Duration

	// Out receives the status: a redrawn block when Live, else a line
	// every StatusEvery plus a line per event. Default: discarded.
	Out io.Writer
	// Live redraws the status block in place (for a terminal).
	Live bool
	// StatusEvery is the interval of plain status lines. Default 5s.
	StatusEvery time.Duration
}

func (c Config) withDefaults() Config {
	if c.Lines == 0 {
		c.Lines = 12000
	}
	if c.Rate == 0 {
		c.Rate = 200
	}
	if c.Shards == 0 {
		c.Shards = 4
	}
	if c.Workers == 0 {
		c.Workers = 3
	}
	if c.FailoverTime == 0 {
		c.FailoverTime = 10 * time.Second
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 90 * time.Second
	}
	if c.StatusEvery == 0 {
		c.StatusEvery = 5 * time.Second
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return c
}

// Validate reports the first invalid field.
func (c Config) Validate() error {
	switch {
	case c.KinesisURL == "" || c.DynamoDBURL == "":
		return errors.New("e2e: KinesisURL and DynamoDBURL are required")
	case c.Dir == "":
		return errors.New("e2e: Dir is required")
	case c.Lines < 0 || c.Rate < 0 || c.Shards < 0 || c.Workers < 0 || c.Rotations < 0:
		return errors.New("e2e: Lines, Rate, Shards, Workers and Rotations must not be negative")
	case c.KillAt < 0 || c.KillAt >= 1 || c.SplitAt < 0 || c.SplitAt >= 1 || c.MergeAt < 0 || c.MergeAt >= 1:
		return errors.New("e2e: KillAt, SplitAt and MergeAt must lie in [0, 1)")
	case c.Workers == 1 && c.KillAt > 0:
		return errors.New("e2e: killing the only worker leaves nobody to consume")
	}
	return nil
}

// Result is what a run found.
type Result struct {
	// Sent is the number of lines written to the log.
	Sent int
	// Distinct is the number of those lines the consumers wrote at least
	// once; Lost the number they never wrote.
	Distinct, Lost int
	// Duplicates counts the extra copies (a line consumed twice counts 1).
	Duplicates int
	// Missing are the first few lost line numbers.
	Missing []int
	// Elapsed is the run's duration, from the stream's creation to the end
	// of the count.
	Elapsed time.Duration
}

// String is the run's closing line.
func (r Result) String() string {
	return fmt.Sprintf("demo: sent %d lines, consumed %d distinct, lost %d, duplicates %d", r.Sent, r.Distinct, r.Lost, r.Duplicates)
}

// Build compiles kinesis-agent and kinesis-demo-consumer into dir.
func Build(ctx context.Context, dir string) error {
	root, err := ModuleRoot(ctx)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./cmd/kinesis-agent", "./cmd/kinesis-demo-consumer")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// ModuleRoot returns the repository's root directory (where go.mod is).
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("not inside the module: run from the repository")
	}
	return filepath.Dir(gomod), nil
}

// run is the state of one run.
type run struct {
	cfg     Config
	start   time.Time
	stream  string
	app     string
	kinesis *kinesis.Client
	ddb     *dynamodb.Client
	leases  *lease.DynamoDBStore
	proxy   *proxy.Proxy
	log     *logWriter
	tally   *tally
	agent   *process
	workers []*process
	view    *view
}

// Run performs one run and returns what it found. The error is non-nil
// when the run could not be carried out (a process failed to start or died,
// the context ended); lost lines are reported in the Result, not as an
// error. Every process started is stopped before Run returns.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	r := &run{cfg: cfg, tally: newTally(cfg.Lines)}
	r.view = newView(cfg.Out, cfg.Live)
	for _, d := range []string{"logs", "agent", "out"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o755); err != nil {
			return Result{}, err
		}
	}
	if cfg.BinDir == "" {
		r.cfg.BinDir = filepath.Join(cfg.Dir, "bin")
		r.view.event(0, "building kinesis-agent and kinesis-demo-consumer")
		if err := Build(ctx, r.cfg.BinDir); err != nil {
			return Result{}, err
		}
	}
	defer r.cleanup()
	return r.run(ctx)
}

// cleanup stops every process, then deletes the stream and the lease table
// (best effort: the emulators may be going away too).
func (r *run) cleanup() {
	r.stopAll()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if r.kinesis != nil && r.stream != "" {
		_, _ = r.kinesis.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(r.stream), EnforceConsumerDeletion: aws.Bool(true)})
	}
	if r.ddb != nil && r.app != "" {
		_, _ = r.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(r.app)})
	}
}

func (r *run) elapsed() time.Duration { return time.Since(r.start) }

func (r *run) run(ctx context.Context) (Result, error) {
	cfg := r.cfg
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	if err != nil {
		return Result{}, err
	}
	r.kinesis = kinesis.NewFromConfig(awsCfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(cfg.KinesisURL) })
	r.ddb = dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(cfg.DynamoDBURL) })

	r.start = time.Now()
	suffix := fmt.Sprintf("%d-%d", time.Now().Unix(), os.Getpid())
	r.stream, r.app = "demo-"+suffix, "demo-app-"+suffix
	if r.leases, err = lease.NewDynamoDBStore(lease.DynamoDBConfig{DynamoDB: r.ddb, Table: r.app}); err != nil {
		return Result{}, err
	}

	// ShardLifecycle: ListShards filters and retention as AWS applies them,
	// which kinesis-mock does not, so that lineage runs as on real Kinesis.
	pcfg := proxy.Config{KinesisURL: cfg.KinesisURL, DynamoDBURL: cfg.DynamoDBURL, Seed: 1, ShardLifecycle: true}
	if cfg.Faults {
		pcfg.Kinesis = proxy.KinesisFaults{InternalFailure: 0.01, ServerError: 0.005}
		pcfg.DynamoDB = proxy.DynamoDBFaults{Throttling: 0.01}
		pcfg.Limits.ReadCallsPerSecond = 2
	}
	if r.proxy, err = proxy.Start(pcfg); err != nil {
		return Result{}, fmt.Errorf("start the fault proxy: %w", err)
	}
	r.view.event(r.elapsed(), fmt.Sprintf("fault proxy on %s (per-shard limits on, AWS's ListShards and retention on, faults %s)", r.proxy.URL(), onOff(cfg.Faults)))

	if err := r.createStream(ctx); err != nil {
		return Result{}, err
	}
	r.view.event(r.elapsed(), fmt.Sprintf("stream %s created with %d shards", r.stream, cfg.Shards))

	env := childEnv(r.proxy.URL())
	for i := 1; i <= cfg.Workers; i++ {
		name := fmt.Sprintf("worker-%d", i)
		p, err := startProcess(name, filepath.Join(cfg.Dir, "out", name+".log"), env,
			filepath.Join(cfg.BinDir, "kinesis-demo-consumer"),
			"-stream", r.stream, "-app", r.app, "-worker-id", name, "-failover", cfg.FailoverTime.String(),
			"-out", r.outPath(name), "-status", filepath.Join(cfg.Dir, "out", name+".json"))
		if err != nil {
			return Result{}, err
		}
		r.workers = append(r.workers, p)
	}
	r.view.event(r.elapsed(), fmt.Sprintf("%d consumer workers started (app %s)", cfg.Workers, r.app))

	r.log = &logWriter{dir: filepath.Join(cfg.Dir, "logs"), total: cfg.Lines, rate: cfg.Rate, rotate: make(chan struct{})}
	agentConf := filepath.Join(cfg.Dir, "agent", "agent.json")
	if err := r.writeAgentConfig(agentConf); err != nil {
		return Result{}, err
	}
	if r.agent, err = startProcess("kinesis-agent", filepath.Join(cfg.Dir, "agent", "agent.log"), env,
		filepath.Join(cfg.BinDir, "kinesis-agent"), "-config", agentConf); err != nil {
		return Result{}, err
	}
	r.view.event(r.elapsed(), "kinesis-agent started, tailing "+filepath.Join(r.log.dir, "access.log*"))

	genCtx, stopGen := context.WithCancel(ctx)
	defer stopGen()
	genDone := make(chan error, 1)
	genExited := make(chan struct{})
	go func() {
		defer close(genExited)
		genDone <- r.log.run(genCtx)
	}()
	defer func() { stopGen(); <-genExited }()

	if err := r.drive(ctx, genDone); err != nil {
		return r.result(), err
	}
	return r.finish(), nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (r *run) outPath(worker string) string {
	return filepath.Join(r.cfg.Dir, "out", worker+".txt")
}

// childEnv is the environment of the agent and the consumers: the standard
// AWS variables pointing at the proxy, with dummy credentials.
func childEnv(endpoint string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_ENDPOINT_URL="+endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_EC2_METADATA_DISABLED=true")
}

// writeAgentConfig writes an agent.json in the format of AWS's Kinesis
// Agent.
func (r *run) writeAgentConfig(path string) error {
	conf := map[string]any{
		"checkpointFile":        filepath.Join(r.cfg.Dir, "agent", "checkpoints"),
		"kinesis.endpoint":      r.proxy.URL(),
		"kinesis.region":        "us-east-1",
		"shutdownTimeoutMillis": 10000,
		"flows": []map[string]any{{
			"filePattern":        filepath.Join(r.log.dir, "access.log*"),
			"kinesisStream":      r.stream,
			"partitionKeyOption": "RANDOM",
			"initialPosition":    "START_OF_FILE",
			"maxBufferAgeMillis": 250,
			"aggregation":        true, // this agent's addition: KPL aggregation, which the consumers undo
		}},
	}
	b, err := json.MarshalIndent(conf, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func (r *run) createStream(ctx context.Context) error {
	_, err := r.kinesis.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(r.stream), ShardCount: aws.Int32(int32(r.cfg.Shards))})
	if err != nil {
		return fmt.Errorf("create stream: %w", err)
	}
	return r.waitActive(ctx)
}

func (r *run) waitActive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		out, err := r.kinesis.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(r.stream)})
		if err == nil && out.StreamDescriptionSummary.StreamStatus == kintypes.StreamStatusActive {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s not ACTIVE: %w (last error: %v)", r.stream, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// drive runs the schedule: events as the log is written, the status view,
// then the wait for the consumers to catch up.
func (r *run) drive(ctx context.Context, genDone <-chan error) error {
	cfg := r.cfg
	type step struct {
		at   float64
		name string
		do   func(context.Context) error
	}
	var steps []step
	for i := 1; i <= cfg.Rotations; i++ {
		steps = append(steps, step{float64(i) / float64(cfg.Rotations+1), "rotate", r.rotateLog})
	}
	if cfg.KillAt > 0 {
		steps = append(steps, step{cfg.KillAt, "kill", r.killBusiest})
	}
	if cfg.SplitAt > 0 {
		steps = append(steps, step{cfg.SplitAt, "split", r.split})
	}
	if cfg.MergeAt > 0 {
		steps = append(steps, step{cfg.MergeAt, "merge", r.merge})
	}
	sort.SliceStable(steps, func(i, j int) bool { return steps[i].at < steps[j].at })

	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var (
		generating   = true
		drainStarted time.Time
		lastPlain    time.Time
		lastRender   time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-genDone:
			if err != nil {
				return fmt.Errorf("writing the log: %w", err)
			}
			generating = false
			drainStarted = time.Now()
			r.view.event(r.elapsed(), fmt.Sprintf("all %d lines written; waiting for the consumers to catch up", cfg.Lines))
			genDone = nil
		case <-tick.C:
		}
		written := int(r.log.written.Load())
		for len(steps) > 0 && float64(written) >= steps[0].at*float64(cfg.Lines) {
			if err := steps[0].do(ctx); err != nil {
				return fmt.Errorf("%s: %w", steps[0].name, err)
			}
			steps = steps[1:]
		}
		if err := r.checkProcesses(); err != nil {
			return err
		}
		if err := r.scanOutputs(); err != nil {
			return err
		}
		if !generating && r.tally.distinct >= cfg.Lines {
			r.render(true)
			return nil
		}
		if !generating && time.Since(drainStarted) > cfg.DrainTimeout {
			r.view.event(r.elapsed(), fmt.Sprintf("gave up waiting after %v: %d lines not consumed", cfg.DrainTimeout, cfg.Lines-r.tally.distinct))
			r.render(true)
			return nil
		}
		if (cfg.Live && time.Since(lastRender) >= time.Second) || (!cfg.Live && time.Since(lastPlain) >= cfg.StatusEvery) {
			r.render(false)
			lastRender, lastPlain = time.Now(), time.Now()
		}
	}
}

func (r *run) rotateLog(ctx context.Context) error {
	select {
	case r.log.rotate <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.view.event(r.elapsed(), "rotated access.log (renamed to access.log.1, new access.log)")
	return nil
}

// killBusiest kills the worker holding the most leases with SIGKILL.
func (r *run) killBusiest(ctx context.Context) error {
	held := r.leasesByOwner(ctx)
	var victim *process
	for _, p := range r.workers {
		if p.alive() && (victim == nil || len(held[p.name]) > len(held[victim.name])) {
			victim = p
		}
	}
	if victim == nil {
		return errors.New("no worker alive to kill")
	}
	victim.kill()
	r.view.event(r.elapsed(), fmt.Sprintf("killed %s with SIGKILL (it held %s)", victim.name, leaseList(held[victim.name])))
	return nil
}

func leaseList(ids []string) string {
	if len(ids) == 0 {
		return "no leases"
	}
	return strings.Join(shortIDs(ids), ", ")
}

// openShards lists the open shards ordered by hash range.
func (r *run) openShards(ctx context.Context) ([]kintypes.Shard, error) {
	var shards []kintypes.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(r.stream),
		ShardFilter: &kintypes.ShardFilter{Type: kintypes.ShardFilterTypeAtLatest}}
	for {
		out, err := r.kinesis.ListShards(ctx, in)
		if err != nil {
			return nil, err
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	sort.Slice(shards, func(i, j int) bool {
		a, _ := hashkey.Parse(aws.ToString(shards[i].HashKeyRange.StartingHashKey))
		b, _ := hashkey.Parse(aws.ToString(shards[j].HashKeyRange.StartingHashKey))
		return a.Cmp(b) < 0
	})
	return shards, nil
}

// split splits the open shard with the lowest hash keys at its midpoint.
func (r *run) split(ctx context.Context) error {
	shards, err := r.openShards(ctx)
	if err != nil {
		return err
	}
	s := shards[0]
	rng, err := hashkey.ParseRange(aws.ToString(s.HashKeyRange.StartingHashKey), aws.ToString(s.HashKeyRange.EndingHashKey))
	if err != nil {
		return err
	}
	mid := hashkey.Mid(rng.Start, rng.End)
	lo, carry := bits.Add64(mid.Lo, 1, 0)
	at := hashkey.Key{Hi: mid.Hi + carry, Lo: lo}
	if _, err := r.kinesis.SplitShard(ctx, &kinesis.SplitShardInput{StreamName: aws.String(r.stream),
		ShardToSplit: s.ShardId, NewStartingHashKey: aws.String(at.String())}); err != nil {
		return err
	}
	if err := r.waitActive(ctx); err != nil {
		return err
	}
	r.view.event(r.elapsed(), "split "+short(aws.ToString(s.ShardId))+" in two")
	return nil
}

// merge merges the two open shards with the highest hash keys.
func (r *run) merge(ctx context.Context) error {
	shards, err := r.openShards(ctx)
	if err != nil {
		return err
	}
	if len(shards) < 2 {
		return errors.New("fewer than two open shards")
	}
	a, b := shards[len(shards)-2], shards[len(shards)-1]
	if _, err := r.kinesis.MergeShards(ctx, &kinesis.MergeShardsInput{StreamName: aws.String(r.stream),
		ShardToMerge: a.ShardId, AdjacentShardToMerge: b.ShardId}); err != nil {
		return err
	}
	if err := r.waitActive(ctx); err != nil {
		return err
	}
	r.view.event(r.elapsed(), fmt.Sprintf("merged %s and %s", short(aws.ToString(a.ShardId)), short(aws.ToString(b.ShardId))))
	return nil
}

// checkProcesses fails the run when the agent or a worker that was not
// killed on purpose has exited.
func (r *run) checkProcesses() error {
	for _, p := range append([]*process{r.agent}, r.workers...) {
		if p.alive() {
			continue
		}
		if !p.wasKilled() {
			return fmt.Errorf("%s exited unexpectedly (%v); last lines of %s:\n%s", p.name, p.exitErr(), p.log.Name(), tailFile(p.log.Name(), 15))
		}
	}
	return nil
}

func (r *run) scanOutputs() error {
	for _, p := range r.workers {
		if err := r.tally.scan(r.outPath(p.name)); err != nil {
			return err
		}
	}
	return nil
}

// leasesByOwner returns the unfinished leases each worker holds, from the
// lease table ("" for unowned).
func (r *run) leasesByOwner(ctx context.Context) map[string][]string {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	all, err := r.leases.List(ctx)
	held := map[string][]string{}
	if err != nil {
		return held // the table may not exist yet
	}
	for _, l := range all {
		if !l.Finished() {
			held[l.Owner] = append(held[l.Owner], l.Key)
		}
	}
	return held
}

// stopAll stops the agent, then the workers, gracefully, then the proxy.
func (r *run) stopAll() {
	if r.agent != nil {
		r.agent.stop(15 * time.Second)
	}
	for _, p := range r.workers {
		p.stop(30 * time.Second)
	}
	if r.proxy != nil {
		r.proxy.Close()
	}
}

// finish stops the processes and counts what the consumers wrote.
func (r *run) finish() Result {
	r.stopAll()
	_ = r.scanOutputs()
	return r.result()
}

func (r *run) result() Result {
	sent := 0
	if r.log != nil {
		sent = int(r.log.written.Load())
	}
	missing, lost := r.tally.missing(sent, 10)
	return Result{Sent: sent, Distinct: r.tally.distinct, Lost: lost, Duplicates: r.tally.duplicates, Missing: missing, Elapsed: r.elapsed()}
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// short abbreviates shardId-000000000004 to shard-4.
func short(id string) string {
	n := strings.TrimLeft(strings.TrimPrefix(id, "shardId-"), "0")
	if n == "" {
		n = "0"
	}
	return "shard-" + n
}

func shortIDs(ids []string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = short(id)
	}
	sort.Strings(out)
	return out
}
