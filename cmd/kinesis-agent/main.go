// Command kinesis-agent tails log files into Kinesis data streams and
// Amazon Data Firehose delivery streams. It reads the agent.json of AWS's
// Kinesis Agent (see package agent/config for the keys and this agent's
// additions).
//
//	kinesis-agent -config /etc/kinesis-agent/agent.json   # run until SIGTERM or SIGINT
//	kinesis-agent -config agent.json -check               # validate and exit
//
// SIGHUP reloads the configuration: the running flows stop (their
// acknowledged positions are saved) and the new ones resume from the saved
// positions. An invalid new configuration is logged and the old one kept.
//
// The Kinesis endpoint is kinesis.endpoint when set, else the standard
// AWS_ENDPOINT_URL_KINESIS or AWS_ENDPOINT_URL variables; likewise
// firehose.endpoint (AWS_ENDPOINT_URL_FIREHOSE) and sts.endpoint
// (AWS_ENDPOINT_URL_STS). Region and credentials come from the AWS config
// chain unless set in the file. A flow with an assumeRoleARN (its own, or
// the file's) signs its calls with that role's temporary credentials,
// obtained from STS with the base credentials and refreshed a minute before
// they expire; a role that cannot be assumed stops the agent at start with
// an error naming it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/kinesisgo/kinesis/agent"
	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/offsets"
	"github.com/kinesisgo/kinesis/kpl"
)

func main() {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, sigs))
}

// run is the command; it returns the exit status.
func run(args []string, stdout, stderr io.Writer, sigs <-chan os.Signal) int {
	fs := flag.NewFlagSet("kinesis-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/kinesis-agent/agent.json", "configuration `file` (AWS Kinesis Agent agent.json format)")
	check := fs.Bool("check", false, "validate the configuration and exit")
	level := zapcore.InfoLevel
	fs.Var(&level, "log-level", "log `level`: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "kinesis-agent: unexpected arguments %q\n", fs.Args())
		return 2
	}
	file, err := load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "kinesis-agent: %v\n", err)
		return 1
	}
	if *check {
		for _, w := range file.Warnings {
			fmt.Fprintf(stdout, "warning: %s\n", w)
		}
		fmt.Fprintf(stdout, "%s: ok (%d flows)\n", *path, len(file.Flows))
		return 0
	}
	log := newLogger(stderr, level)
	defer func() { _ = log.Sync() }()

	var current atomic.Pointer[prometheus.Registry]
	if file.MetricsListen != "" {
		stop, err := serveMetrics(file.MetricsListen, &current, log)
		if err != nil {
			log.Error("metrics listener", zap.Error(err))
			return 1
		}
		defer stop()
	}

	for {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		current.Store(reg)
		a, err := newAgent(file, log, reg)
		if err != nil {
			log.Error("starting", zap.Error(err))
			return 1
		}
		for _, w := range file.Warnings {
			log.Warn("configuration", zap.String("warning", w))
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- a.Run(ctx) }()
		log.Info("running", zap.String("config", *path), zap.Int("flows", len(file.Flows)))

		reload := false
	wait:
		for {
			select {
			case err := <-done:
				cancel()
				if err != nil {
					log.Error("agent stopped", zap.Error(err))
					return 1
				}
				return 0
			case sig := <-sigs:
				if sig != syscall.SIGHUP {
					log.Info("stopping", zap.String("signal", sig.String()))
					break wait
				}
				next, err := load(*path)
				if err != nil {
					log.Error("reload: keeping the running configuration", zap.Error(err))
					continue
				}
				if next.MetricsListen != file.MetricsListen {
					log.Warn("reload: metrics.listen changes take effect at the next start")
				}
				file, reload = next, true
				log.Info("reloading")
				break wait
			}
		}
		cancel()
		if err := <-done; err != nil {
			log.Error("stopping", zap.Error(err))
			if !reload {
				return 1
			}
		}
		if !reload {
			log.Info("stopped")
			return 0
		}
	}
}

// load reads and checks the configuration, including its data processing
// options.
func load(path string) (*config.File, error) {
	file, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	cfg := agent.Config{Flows: file.Flows, Offsets: &offsets.Store{}, NewSink: func(config.Flow) (agent.Sink, error) { return nil, nil }}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return file, nil
}

func newLogger(w io.Writer, level zapcore.LevelEnabler) *zap.Logger {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(w), level)
	return zap.New(core)
}

func newAgent(file *config.File, log *zap.Logger, reg *prometheus.Registry) (*agent.Agent, error) {
	store, err := offsets.Open(file.CheckpointFile)
	if err != nil {
		return nil, err
	}
	cl, err := newClients(file)
	if err != nil {
		return nil, err
	}
	return agent.New(agent.Config{
		Flows:           file.Flows,
		Offsets:         store,
		ShutdownTimeout: file.ShutdownTimeout,
		Logger:          log,
		Metrics:         reg,
		NewSink:         func(fl config.Flow) (agent.Sink, error) { return newSink(cl, fl, log, reg) },
	})
}

// newSink returns the sink of a flow: a kpl producer for a Kinesis stream,
// a FirehoseSink for a delivery stream, signed with the flow's role when it
// has one.
func newSink(cl *clients, fl config.Flow, log *zap.Logger, reg prometheus.Registerer) (agent.Sink, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.checkRole(ctx, fl); err != nil {
		return nil, err
	}
	flog := log.With(zap.String("flow", fl.ID()))
	if fl.Firehose() {
		return agent.NewFirehoseSink(agent.FirehoseSinkConfig(fl, cl.firehoseFor(fl), flog, reg))
	}
	p, err := kpl.New(agent.ProducerConfig(fl, cl.kinesisFor(fl), flog, reg))
	if err != nil {
		return nil, err
	}
	return agent.KPLSink(p), nil
}

// serveMetrics serves /metrics from the current registry on addr.
func serveMetrics(addr string, current *atomic.Pointer[prometheus.Registry], log *zap.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		promhttp.HandlerFor(current.Load(), promhttp.HandlerOpts{}).ServeHTTP(w, r)
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", zap.Error(err))
		}
	}()
	log.Info("metrics", zap.String("listen", ln.Addr().String()))
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		wg.Wait()
	}, nil
}
