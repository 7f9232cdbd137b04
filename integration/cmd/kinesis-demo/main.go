// Command kinesis-demo shows the whole toolkit working on one machine; make
// demo runs it. It starts its own pair of emulators (on ports of its own,
// so that it does not disturb a running make test) and the fault proxy,
// creates a 4-shard stream, runs kinesis-agent on a generated web access log
// that is rotated during the run, and three kinesis-demo-consumer workers.
// While records flow it kills the busiest worker with SIGKILL, splits one
// shard and merges two others. It ends with the line
//
//	demo: sent N lines, consumed N distinct, lost 0, duplicates D
//
// and exits 0 only if no line was lost (1 otherwise, 130 when interrupted).
// Every process it starts is stopped before it exits, also when interrupted.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kinesisgo/kinesis/integration/e2e"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx)
	stop()
	os.Exit(code)
}

func run(ctx context.Context) int {
	var (
		lines   = flag.Int("lines", 12000, "log lines to write")
		rate    = flag.Int("rate", 200, "log lines written per second")
		kport   = flag.Int("kinesis-port", 4598, "port of the demo's Kinesis emulator")
		dport   = flag.Int("dynamodb-port", 4599, "port of the demo's DynamoDB emulator")
		keep    = flag.Bool("keep", false, "keep the work directory (logs, agent and consumer output) after the run")
		plain   = flag.Bool("plain", false, "plain status lines even on a terminal")
		workDir = flag.String("dir", "", "work directory (default: a new temporary directory)")
		binDir  = flag.String("bin", "", "directory holding prebuilt kinesis-agent and kinesis-demo-consumer (default: build them)")
	)
	flag.Parse()
	start := time.Now()
	out := os.Stdout

	dir := *workDir
	if dir == "" {
		d, err := os.MkdirTemp("", "kinesis-demo-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "demo:", err)
			return 1
		}
		dir = d
	}
	if !*keep && *workDir == "" {
		defer os.RemoveAll(dir)
	}
	root, err := e2e.ModuleRoot(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}

	// Build the programs while the emulators start.
	bin := *binDir
	built := make(chan error, 1)
	if bin == "" {
		bin = filepath.Join(dir, "bin")
		go func() { built <- e2e.Build(ctx, bin) }()
	} else {
		built <- nil
	}

	emu := emulators{script: filepath.Join(root, "integration", "emulators", "run"), kport: *kport, dport: *dport,
		state: filepath.Join(os.TempDir(), fmt.Sprintf("kinesis-demo-emulators-%d", *kport))}
	fmt.Fprintf(out, "demo: starting the emulators (Kinesis on :%d, DynamoDB on :%d) and building the programs\n", *kport, *dport)
	kinesisURL, dynamoURL, err := emu.start(ctx)
	if err != nil {
		<-built
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}
	defer emu.stop()
	if err := <-built; err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		return 1
	}

	fi, _ := out.Stat()
	live := !*plain && fi != nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
	res, err := e2e.Run(ctx, e2e.Config{
		KinesisURL: kinesisURL, DynamoDBURL: dynamoURL, Dir: dir, BinDir: bin,
		Lines: *lines, Rate: *rate, Shards: 4, Workers: 3,
		Rotations: 2, KillAt: 0.25, SplitAt: 0.4, MergeAt: 0.6, Faults: true,
		Out: out, Live: live,
	})
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "demo: interrupted; the processes it started are stopped")
		return 130
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		if *keep || *workDir != "" {
			fmt.Fprintln(os.Stderr, "demo: logs are in", dir)
		} else {
			fmt.Fprintln(os.Stderr, "demo: run with -keep to keep the logs")
		}
		return 1
	}
	if len(res.Missing) > 0 {
		fmt.Fprintf(out, "demo: first lost line numbers: %v\n", res.Missing)
	}
	if *keep || *workDir != "" {
		fmt.Fprintln(out, "demo: work directory:", dir)
	}
	fmt.Fprintf(out, "demo: wall time %s\n", time.Since(start).Round(time.Second))
	fmt.Fprintln(out, res)
	if res.Lost > 0 || res.Sent == 0 {
		return 1
	}
	return 0
}

// emulators runs integration/emulators/run with the demo's ports and state
// directory.
type emulators struct {
	script       string
	kport, dport int
	state        string
}

func (e emulators) command(ctx context.Context, verb string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, e.script, verb)
	cmd.Env = append(os.Environ(),
		fmt.Sprintf("KINESIS_PORT=%d", e.kport), fmt.Sprintf("DYNAMODB_PORT=%d", e.dport),
		fmt.Sprintf("KINESIS_TLS_PORT=%d", e.kport+10000), "EMULATORS_STATE_DIR="+e.state)
	return cmd
}

// start stops what an interrupted earlier demo may have left, starts the
// emulators and returns their endpoints.
func (e emulators) start(ctx context.Context) (kinesisURL, dynamoURL string, err error) {
	_ = e.command(ctx, "stop").Run()
	cmd := e.command(ctx, "start")
	cmd.Stderr = os.Stderr // npm ci on the first run, and the reason of a failure
	out, err := cmd.Output()
	if err != nil {
		e.stop()
		return "", "", fmt.Errorf("starting the emulators: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "AWS_ENDPOINT_URL_KINESIS":
			kinesisURL = v
		case "AWS_ENDPOINT_URL_DYNAMODB":
			dynamoURL = v
		}
	}
	if kinesisURL == "" || dynamoURL == "" {
		e.stop()
		return "", "", errors.New("the emulator script printed no endpoints")
	}
	return kinesisURL, dynamoURL, nil
}

func (e emulators) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = e.command(ctx, "stop").Run()
}
