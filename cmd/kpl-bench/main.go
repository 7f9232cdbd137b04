// Command kpl-bench measures the producer (package kpl) as a whole process:
// it puts N records of a given size, with partition keys drawn from a table
// generated before the clock starts, into a loopback PutRecords sink, and
// prints user records per CPU-second (user plus system time of this process,
// from getrusage) and the process's peak RSS.
//
// The sink runs in a child process (this program started again with -sink),
// so that its CPU and memory are not counted. It answers ListShards with
// -shards shards of equal hash key ranges and PutRecords with success for
// every entry, or, with -limit, with ProvisionedThroughputExceededException
// for the entries beyond a shard's write limits (1 MiB/s and 1,000 records/s
// per shard, each a token bucket holding one second's worth, as the
// project's limits proxy models Kinesis). The sink prints what it accepted
// when it stops.
//
//	kpl-bench -n 1000000 -size 100
//	kpl-bench -n 1000000 -size 1024
//	kpl-bench -shards 1 -limit -duration 60s -defaults   # a stream slower than the application
//
// By default the producer's client-side rate limit is raised out of the way
// (-rate); -defaults leaves every producer setting at its default.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/kinesisgo/kinesis/kpl"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kpl-bench:", err)
		os.Exit(1)
	}
}

type options struct {
	n          int
	size       int
	keys       int
	randomKeys bool
	shards     int
	limit      bool
	duration   time.Duration
	rate       int
	bufBytes   int
	noAgg      bool
	defaults   bool
	sink       bool
	aggMaxSize int
	cpuProfile string
	memProfile string
}

func run() error {
	var o options
	flag.IntVar(&o.n, "n", 1_000_000, "user records to put (ignored with -duration)")
	flag.IntVar(&o.size, "size", 100, "bytes of data per user record")
	flag.IntVar(&o.keys, "keys", 65536, "size of the partition key table (random 16-32 character keys)")
	flag.BoolVar(&o.randomKeys, "random-key-order", false, "draw each record's key from the table at random (a cache miss or two per record, the generator's) instead of in the table's order")
	flag.IntVar(&o.shards, "shards", 1, "shards of the sink's stream")
	flag.BoolVar(&o.limit, "limit", false, "the sink enforces each shard's write limits (1 MiB/s, 1,000 records/s)")
	flag.DurationVar(&o.duration, "duration", 0, "put as fast as possible for this long instead of -n records")
	flag.IntVar(&o.rate, "rate", 1_000_000, "producer RateLimit in percent of a shard's limits (0: the default)")
	flag.IntVar(&o.bufBytes, "max-buffered-bytes", 0, "producer MaxBufferedBytes (0: the default)")
	flag.IntVar(&o.aggMaxSize, "aggregation-max-size", 0, "producer AggregationMaxSize (0: the default)")
	flag.BoolVar(&o.noAgg, "no-aggregation", false, "producer DisableAggregation")
	flag.BoolVar(&o.defaults, "defaults", false, "leave every producer setting at its default (overrides -rate)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the puts and Close to this file")
	flag.StringVar(&o.memProfile, "memprofile", "", "write a heap profile, taken when the last record was put, to this file")
	flag.BoolVar(&o.sink, "sink", false, "run as the sink (started by the benchmark itself)")
	flag.Parse()
	if o.sink {
		return runSink(o)
	}
	return runBench(o)
}

// startSink starts this program again as the sink and returns its URL.
func startSink(o options) (*exec.Cmd, string, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	args := []string{"-sink", fmt.Sprintf("-shards=%d", o.shards), fmt.Sprintf("-limit=%t", o.limit)}
	cmd := exec.Command(self, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, "", err
	}
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, "", fmt.Errorf("sink did not start: %w", err)
	}
	return cmd, strings.TrimSpace(line), nil
}

func runBench(o options) error {
	sink, url, err := startSink(o)
	if err != nil {
		return err
	}
	defer func() {
		_ = sink.Process.Signal(syscall.SIGTERM)
		_ = sink.Wait()
	}()

	client := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDBENCH", "bench-secret", ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient: &http.Client{Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			MaxIdleConns:        64,
		}},
	})
	cfg := kpl.Config{Stream: "bench", Kinesis: client}
	if !o.defaults {
		cfg.RateLimit = o.rate
		cfg.MaxBufferedBytes = o.bufBytes
		cfg.AggregationMaxSize = o.aggMaxSize
		cfg.DisableAggregation = o.noAgg
	}
	p, err := kpl.New(cfg)
	if err != nil {
		return err
	}

	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	keys := make([]string, o.keys)
	for i := range keys {
		b := make([]byte, 16+rng.IntN(17))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		keys[i] = string(b)
	}
	// The keys are put in the table's order, which the memory they were
	// allocated in follows, so that reading them costs the generator next
	// to nothing, as an application's freshly made keys would; or, with
	// -random-key-order, in a random order.
	seq := make([]string, 1<<16)
	for i := range seq {
		if o.randomKeys {
			seq[i] = keys[rng.IntN(len(keys))]
		} else {
			seq[i] = keys[i%len(keys)]
		}
	}
	data := make([]byte, o.size)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}

	var ok, expired, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	cb := func(r kpl.Result) {
		switch {
		case r.Err == nil:
			ok.Add(1)
		case errors.Is(r.Err, kpl.ErrRecordExpired):
			expired.Add(1)
		default:
			failed.Add(1)
			err := r.Err // only this copy escapes, not every Result
			firstErr.CompareAndSwap(nil, &err)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	// Warm up: the shard map is loaded and a connection is open.
	if _, err := p.PutSync(ctx, kpl.Record{PartitionKey: "warm-up", Data: data}); err != nil {
		return fmt.Errorf("warm-up record: %w", err)
	}

	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	cpu0 := cpuTime()
	start := time.Now()
	var deadline time.Time
	if o.duration > 0 {
		deadline = start.Add(o.duration)
	}
	put := 0
	for ; o.duration > 0 || put < o.n; put++ {
		if o.duration > 0 && put&1023 == 0 && time.Now().After(deadline) {
			break
		}
		rec := kpl.Record{PartitionKey: seq[put&(1<<16-1)], Data: data}
		if err := p.Put(ctx, rec, cb); err != nil {
			return fmt.Errorf("put: %w", err)
		}
	}
	putDone := time.Since(start)
	if o.memProfile != "" {
		f, err := os.Create(o.memProfile)
		if err != nil {
			return err
		}
		err = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
		if err != nil {
			return err
		}
	}
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if err := p.Close(closeCtx); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	wall := time.Since(start)
	cpu := cpuTime() - cpu0

	order := "in order"
	if o.randomKeys {
		order = "in random order"
	}
	fmt.Printf("records            %d of %d B (keys: table of %d, 16-32 characters, %s)\n", put, o.size, o.keys, order)
	fmt.Printf("written            %d   expired %d   failed %d\n", ok.Load(), expired.Load(), failed.Load())
	if e := firstErr.Load(); e != nil {
		fmt.Printf("first failure      %v\n", *e)
	}
	fmt.Printf("wall               %.2f s (puts %.2f s)\n", wall.Seconds(), putDone.Seconds())
	fmt.Printf("cpu                %.2f s (user+sys, this process)\n", cpu.Seconds())
	fmt.Printf("records/cpu-s      %.0f\n", float64(put)/cpu.Seconds())
	fmt.Printf("records/s          %.0f (written, wall clock)\n", float64(ok.Load())/wall.Seconds())
	maxrss, hwm := peakRSS()
	fmt.Printf("peak rss           %.1f MiB (getrusage maxrss), %.1f MiB (VmHWM)\n", maxrss, hwm)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("gc                 %d cycles, %.0f MiB allocated, %.1f MiB heap in use at the end\n", ms.NumGC, float64(ms.TotalAlloc)/(1<<20), float64(ms.HeapInuse)/(1<<20))
	return nil
}

// cpuTime returns this process's CPU time, user plus system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// peakRSS returns the process's peak resident set in MiB, from getrusage
// and from /proc/self/status (0 where unavailable).
func peakRSS() (maxrss, hwm float64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		maxrss = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return maxrss, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			fmt.Sscanf(strings.TrimSpace(rest), "%f", &kb)
			hwm = kb / 1024
		}
	}
	return maxrss, hwm
}
