package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Proxy is a running proxy. Start one with Start; stop it with Close.
type Proxy struct {
	cfg      Config
	log      *zap.Logger
	ln       net.Listener
	srv      *http.Server
	client   *http.Client
	upstream map[service]*url.URL
	limits   *limiter
	shards   *shardMaps
	lives    *lifecycles // under Config.ShardLifecycle
	iters    *iterators
	sink     *sink
	stats    counters
	ids      identities     // STS stand-in and RequireAccessKey
	fh       *firehoseState // under Config.Firehose
	idx      indexes        // under Config.ModelIndexes
	fan      *fanOut        // under Config.FanOut
	metrics  *writeMetrics  // per-shard writes, served as CloudWatch metrics

	faultMu  sync.Mutex
	rng      *rand.Rand
	kinFault KinesisFaults
	ddbFault DynamoDBFaults

	done      chan struct{} // closed by Close: ends added latency early
	served    chan struct{} // closed when Serve has returned
	baseCtx   context.Context
	cancel    context.CancelFunc // cancels every request's context, at Close
	closeOnce sync.Once
	closeErr  error

	handlersMu sync.Mutex
	closing    bool
	handlers   sync.WaitGroup // ServeHTTP calls in progress
}

// Start validates cfg, listens on cfg.Listen and serves until Close.
func Start(cfg Config) (*Proxy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.ShardMapTTL == 0 {
		cfg.ShardMapTTL = DefaultShardMapTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	p := &Proxy{
		cfg:      cfg,
		log:      log,
		upstream: make(map[service]*url.URL),
		limits:   newLimiter(cfg.Limits, cfg.Now),
		metrics:  newWriteMetrics(),
		iters:    newIterators(),
		rng:      rand.New(rand.NewPCG(uint64(cfg.Seed), 0x6b696e65736973)),
		kinFault: cloneKinesisFaults(cfg.Kinesis),
		ddbFault: cloneDynamoDBFaults(cfg.DynamoDB),
		done:     make(chan struct{}),
		served:   make(chan struct{}),
	}
	for s, raw := range map[service]string{kinesisService: cfg.KinesisURL, dynamoDBService: cfg.DynamoDBURL} {
		if raw != "" {
			u, _ := url.Parse(raw) // checked by Validate
			p.upstream[s] = u
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	tr.MaxIdleConnsPerHost = 64
	p.client = &http.Client{Transport: tr}
	p.limits.observe = p.metrics.observe
	p.shards = newShardMaps(p, cfg.ShardMapTTL)
	p.lives = newLifecycles(p)
	if cfg.Sink {
		p.sink = newSink()
	}
	if cfg.Firehose != nil {
		p.fh = newFirehoseState(cfg.Firehose)
	}
	if cfg.FanOut != nil {
		p.fan = newFanOut(*cfg.FanOut)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("proxy: listen: %w", err)
	}
	p.ln = ln
	p.baseCtx, p.cancel = context.WithCancel(context.Background())
	p.srv = &http.Server{
		Handler:           p,
		ReadHeaderTimeout: 30 * time.Second,
		ErrorLog:          zap.NewStdLog(log),
		BaseContext:       func(net.Listener) context.Context { return p.baseCtx },
		// HTTP/2 without TLS (prior knowledge) beside HTTP/1.1, for
		// SubscribeToShard as AWS serves it, over HTTP/2.
		Protocols: new(http.Protocols),
	}
	p.srv.Protocols.SetHTTP1(true)
	p.srv.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		defer close(p.served)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("proxy: serve", zap.Error(err))
		}
	}()
	log.Info("proxy: listening", zap.String("url", p.URL()), zap.Bool("sink", cfg.Sink),
		zap.String("kinesis", cfg.KinesisURL), zap.String("dynamodb", cfg.DynamoDBURL))
	return p, nil
}

// URL is the proxy's base URL, such as http://127.0.0.1:41234, for use as an
// endpoint (AWS_ENDPOINT_URL, or a client's BaseEndpoint) of either service.
func (p *Proxy) URL() string { return "http://" + p.ln.Addr().String() }

// Close stops the proxy: it stops accepting connections, cancels the
// requests in progress (and their upstream calls), closes open connections,
// and returns once every request handler has returned.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() {
		p.handlersMu.Lock()
		p.closing = true
		p.handlersMu.Unlock()
		close(p.done)
		p.cancel()
		p.closeErr = p.srv.Close()
		<-p.served
		p.handlers.Wait()
		p.client.CloseIdleConnections()
	})
	return p.closeErr
}

// SetKinesisFaults replaces the Kinesis faults while the proxy runs.
func (p *Proxy) SetKinesisFaults(f KinesisFaults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	p.kinFault = cloneKinesisFaults(f)
	return nil
}

// SetDynamoDBFaults replaces the DynamoDB faults while the proxy runs.
func (p *Proxy) SetDynamoDBFaults(f DynamoDBFaults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	p.ddbFault = cloneDynamoDBFaults(f)
	return nil
}

func cloneKinesisFaults(f KinesisFaults) KinesisFaults {
	f.Operations = slices.Clone(f.Operations)
	return f
}

func cloneDynamoDBFaults(f DynamoDBFaults) DynamoDBFaults {
	f.Operations = slices.Clone(f.Operations)
	return f
}

// ServeHTTP handles one request. It is exported so that a Proxy can also be
// mounted in a caller's own server.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.handlersMu.Lock()
	if p.closing {
		p.handlersMu.Unlock()
		http.Error(w, "proxy closed", http.StatusServiceUnavailable)
		return
	}
	p.handlers.Add(1)
	p.handlersMu.Unlock()
	defer p.handlers.Done()

	if r.Method == http.MethodGet && r.URL.Path == "/stats" {
		b, _ := json.MarshalIndent(p.Stats(), "", "  ")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(append(b, '\n'))
		return
	}
	if p.cfg.ShardLifecycle && r.URL.Path == "/expire-shard" {
		p.serveExpireShard(w, r)
		return
	}
	if p.cfg.STS != nil && isSTS(r) {
		p.serveSTS(w, r)
		return
	}
	if p.fh != nil && isFirehose(r) {
		p.serveFirehose(w, r)
		return
	}
	if isCloudWatch(r) {
		p.serveCloudWatch(w, r)
		return
	}
	p.stats.requests.Add(1)
	s, op, aerr := route(r)
	if aerr != nil {
		p.stats.badRequests.Add(1)
		writeError(w, s, *aerr)
		return
	}
	p.stats.call(s, op)
	if p.upstream[s] == nil {
		writeError(w, s, awsError{status: http.StatusServiceUnavailable, code: codeServiceUnavailable,
			message: "proxy: no upstream " + s.String() + " endpoint configured"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			p.stats.badRequests.Add(1)
			writeError(w, s, awsError{status: http.StatusRequestEntityTooLarge, code: codeRequestTooLarge,
				message: fmt.Sprintf("request body larger than %d bytes", MaxBodyBytes)})
		}
		return // the client went away
	}
	if s == kinesisService && len(p.cfg.RequireAccessKey) > 0 {
		var ref streamRef
		_ = json.Unmarshal(body, &ref) // a malformed body gets its error upstream
		if e := p.checkAccessKey(r.Header, ref.name(), "kinesis:"+op); e != nil {
			writeError(w, s, *e)
			return
		}
	}

	f := p.drawFaults(s, op)
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-p.done:
			t.Stop()
			writeError(w, s, awsError{status: http.StatusServiceUnavailable, code: codeServiceUnavailable, message: "proxy: closing"})
			return
		}
	}
	if f.err != nil {
		p.stats.faults.Add(1)
		p.log.Debug("proxy: injected fault", zap.Stringer("service", s), zap.String("op", op), zap.String("error", f.err.code))
		writeResponse(w, errorResponse(s, *f.err), false)
		return
	}
	if s == kinesisService && op == "SubscribeToShard" {
		if p.cfg.ShardLifecycle {
			var in struct{ ConsumerARN, ShardId string }
			if json.Unmarshal(body, &in) == nil && in.ShardId != "" {
				ref := consumerStream(in.ConsumerARN)
				if gone, err := p.agedOut(r.Context(), r.Header, ref, in.ShardId, true); err == nil && gone {
					writeResponse(w, shardGone(in.ShardId, ref.name()), false)
					return
				}
			}
		}
		if p.fan != nil {
			p.subscribeToShard(w, r, body)
			return
		}
		p.forwardStream(w, r, s, body)
		return
	}
	resp := p.handle(r.Context(), s, op, r.Header, body, f)
	if f.cut {
		p.stats.faults.Add(1)
		p.log.Debug("proxy: closing the connection mid-response", zap.Stringer("service", s), zap.String("op", op))
	}
	writeResponse(w, resp, f.cut)
}

// route finds the service and operation of a request from X-Amz-Target.
func route(r *http.Request) (service, string, *awsError) {
	s := kinesisService
	if strings.Contains(r.Header.Get("Content-Type"), "json-1.0") {
		s = dynamoDBService
	}
	if r.Method != http.MethodPost {
		return s, "", &awsError{status: http.StatusMethodNotAllowed, code: codeUnknownOperation,
			message: "proxy: only POST (and GET /stats) are served, not " + r.Method}
	}
	target := r.Header.Get("X-Amz-Target")
	switch {
	case strings.HasPrefix(target, kinesisTargetPrefix):
		op := strings.TrimPrefix(target, kinesisTargetPrefix)
		if !kinesisOps[op] {
			return kinesisService, op, &awsError{status: http.StatusBadRequest, code: codeUnknownOperation,
				message: fmt.Sprintf("unknown Kinesis operation %q", op)}
		}
		return kinesisService, op, nil
	case strings.HasPrefix(target, dynamoDBTargetPrefix):
		op := strings.TrimPrefix(target, dynamoDBTargetPrefix)
		if !dynamoDBOps[op] {
			return dynamoDBService, op, &awsError{status: http.StatusBadRequest, code: codeUnknownOperation,
				message: fmt.Sprintf("unknown DynamoDB operation %q", op)}
		}
		return dynamoDBService, op, nil
	case target == "":
		return s, "", &awsError{status: http.StatusBadRequest, code: codeUnknownOperation,
			message: "missing X-Amz-Target header"}
	}
	return s, "", &awsError{status: http.StatusBadRequest, code: codeUnknownOperation,
		message: fmt.Sprintf("unknown target %q", target)}
}

// handle answers a request that passed the whole-request faults.
func (p *Proxy) handle(ctx context.Context, s service, op string, h http.Header, body []byte, f drawn) response {
	if s == kinesisService && p.cfg.ControlPlaneLimits && !p.cfg.NoLimits {
		if e := p.checkCallRate(op, h, body); e != nil {
			p.stats.throttled.Add(1)
			p.log.Debug("proxy: call rate exceeded", zap.String("op", op))
			return errorResponse(s, *e)
		}
	}
	if s == kinesisService && p.fan != nil && fanOutOps[op] {
		return p.consumerOp(ctx, op, h, body)
	}
	if s == dynamoDBService && p.cfg.ModelIndexes {
		switch op {
		case "UpdateTable":
			if resp, ok := p.updateTable(ctx, h, body); ok {
				return resp
			}
		case "DescribeTable":
			return p.describeTable(ctx, h, body)
		case "Query":
			if resp, ok := p.queryIndex(ctx, h, body); ok {
				return resp
			}
		}
	}
	if s == kinesisService {
		switch op {
		case "PutRecords":
			return p.putRecords(ctx, h, body, f.entryFailure)
		case "PutRecord":
			return p.putRecord(ctx, h, body)
		case "GetShardIterator":
			return p.getShardIterator(ctx, h, body)
		case "GetRecords":
			return p.getRecords(ctx, h, body)
		case "ListShards":
			if p.cfg.ShardLifecycle {
				return p.listShards(ctx, h, body)
			}
		}
	}
	resp, err := p.forward(ctx, s, h, body)
	if err != nil {
		return errorResponse(s, upstreamFailure(err))
	}
	if s == kinesisService && (kinesisReshardOps[op] || op == "DeleteStream") && resp.status == http.StatusOK {
		p.shards.resharded(h, body)
	}
	if s == kinesisService && p.cfg.ShardLifecycle && resp.status == http.StatusOK &&
		(kinesisReshardOps[op] || op == "CreateStream" || op == "DeleteStream") {
		p.lives.passed(op, h, body)
	}
	return resp
}

// drawn are the faults drawn for one request.
type drawn struct {
	delay        time.Duration
	err          *awsError
	cut          bool
	entryFailure float64 // probability of InternalFailure per PutRecords entry
}

// drawFaults decides a request's whole-request faults. Random numbers are
// drawn only for faults with a non-zero probability, in a fixed order, so a
// seed reproduces the faults of a given sequence of requests.
func (p *Proxy) drawFaults(s service, op string) drawn {
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	hit := func(prob float64) bool { return prob > 0 && p.rng.Float64() < prob }
	var d drawn
	var latency, jitter time.Duration
	var cut float64
	if s == kinesisService {
		f := p.kinFault
		if len(f.Operations) > 0 && !slices.Contains(f.Operations, op) {
			return d
		}
		latency, jitter, cut = f.Latency, f.Jitter, f.CloseConnection
		d.entryFailure = f.InternalFailure
		switch {
		case hit(f.ServerError):
			d.err = &awsError{status: http.StatusInternalServerError, code: codeInternalFailure, message: "Internal service failure (injected by proxy)."}
		case hit(f.Unavailable):
			d.err = &awsError{status: http.StatusServiceUnavailable, code: codeServiceUnavailable, message: "Service unavailable (injected by proxy)."}
		case !kinesisDataPlane[op] && hit(f.LimitExceeded):
			d.err = &awsError{status: http.StatusBadRequest, code: codeLimitExceeded, message: "Rate exceeded for " + op + " (injected by proxy)."}
		}
	} else {
		f := p.ddbFault
		if len(f.Operations) > 0 && !slices.Contains(f.Operations, op) {
			return d
		}
		latency, jitter, cut = f.Latency, f.Jitter, f.CloseConnection
		switch {
		case hit(f.ProvisionedThroughputExceeded):
			d.err = &awsError{status: http.StatusBadRequest, code: codeProvisionedThroughput,
				message: "The level of configured provisioned throughput for the table was exceeded (injected by proxy)."}
		case hit(f.Throttling):
			d.err = &awsError{status: http.StatusBadRequest, code: codeThrottling, message: "Rate of requests exceeds the allowed throughput (injected by proxy)."}
		case hit(f.ServerError):
			d.err = &awsError{status: http.StatusInternalServerError, code: codeInternalServerError, message: "Internal server error (injected by proxy)."}
		case hit(f.Unavailable):
			d.err = &awsError{status: http.StatusServiceUnavailable, code: codeServiceUnavailable, message: "Service unavailable (injected by proxy)."}
		}
	}
	d.delay = latency
	if jitter > 0 {
		d.delay += time.Duration(p.rng.Int64N(int64(jitter)))
	}
	d.cut = d.err == nil && hit(cut)
	return d
}

// failEntry draws whether one PutRecords entry fails with InternalFailure.
func (p *Proxy) failEntry(prob float64) bool {
	if prob <= 0 {
		return false
	}
	p.faultMu.Lock()
	defer p.faultMu.Unlock()
	return p.rng.Float64() < prob
}

// checkCallRate applies the control-plane call rates (Config.ControlPlaneLimits).
func (p *Proxy) checkCallRate(op string, h http.Header, body []byte) *awsError {
	lim, ok := controlPlaneLimits[op]
	if !ok {
		return nil
	}
	var in struct {
		streamRef
		ShardId string
	}
	_ = json.Unmarshal(body, &in) // a malformed body gets its error upstream
	key := signingRegion(h) + "|" + op
	switch lim.scope {
	case perStream:
		key += "|" + in.name()
	case perShard:
		key += "|" + in.name() + "|" + in.ShardId
	}
	if p.limits.call(key, lim.perSecond) {
		return nil
	}
	if op == "GetShardIterator" {
		return &awsError{status: http.StatusBadRequest, code: codeProvisionedThroughput,
			message: fmt.Sprintf("Rate exceeded for shard %s in stream %s.", in.ShardId, in.name())}
	}
	return &awsError{status: http.StatusBadRequest, code: codeLimitExceeded,
		message: fmt.Sprintf("Rate exceeded for %s: at most %d calls per second.", op, lim.perSecond)}
}
