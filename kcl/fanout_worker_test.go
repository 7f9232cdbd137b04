package kcl

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kinesisgo/kinesis/checkpoint"
	"github.com/kinesisgo/kinesis/internal/wait"
	"github.com/kinesisgo/kinesis/kinesistest"
)

// fanOutKinesis is an in-memory stream with the calls of enhanced fan-out:
// consumers registered ACTIVE at once, and SubscribeToShard, which the
// tests replace with fakeFanOut's subscribe (the SDK's output cannot be
// made outside the SDK).
type fanOutKinesis struct {
	*kinesistest.Stream
	fan *fakeFanOut

	mu        sync.Mutex
	consumers []string
}

func (k *fanOutKinesis) DescribeStreamConsumer(_ context.Context, in *kinesis.DescribeStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	name := aws.ToString(in.ConsumerName)
	if !slices.Contains(k.consumers, name) {
		return nil, &types.ResourceNotFoundException{Message: aws.String("consumer " + name + " not found")}
	}
	return &kinesis.DescribeStreamConsumerOutput{ConsumerDescription: &types.ConsumerDescription{
		ConsumerName: in.ConsumerName, ConsumerStatus: types.ConsumerStatusActive,
		ConsumerARN: aws.String(aws.ToString(in.StreamARN) + "/consumer/" + name + ":1"),
	}}, nil
}

func (k *fanOutKinesis) RegisterStreamConsumer(_ context.Context, in *kinesis.RegisterStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.consumers = append(k.consumers, aws.ToString(in.ConsumerName))
	return &kinesis.RegisterStreamConsumerOutput{}, nil
}

func (k *fanOutKinesis) SubscribeToShard(context.Context, *kinesis.SubscribeToShardInput, ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	return nil, errors.New("fanOutKinesis: SubscribeToShard is replaced by the test")
}

func (k *fanOutKinesis) registered() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.consumers)
}

func (k *fanOutKinesis) calls() []types.StartingPosition { return k.fan.calls() }

// runFanOut runs a worker of cfg (Retrieval.Mode RetrievalFanOut) on the
// rig's stream with the fan-out calls of fanOutKinesis.
func (r *rig) runFanOut(cfg Config) *fanOutKinesis {
	r.t.Helper()
	k := &fanOutKinesis{Stream: r.fk, fan: &fakeFanOut{fk: r.fk, stream: "stream"}}
	cfg.Kinesis = k
	w, err := New(cfg)
	if err != nil {
		r.t.Fatalf("New: %v", err)
	}
	w.subscribe = k.fan.subscribe
	r.start(w)
	return k
}

// A worker under RetrievalFanOut registers its consumer (named after the
// application), subscribes to each shard it holds, follows a split to the
// children once the parent ends, and counts the subscriptions in its
// metrics.
func TestWorkerFanOutFollowsLineage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t)
		parent := putMany(t, r.fk, 3)
		left, right := split(t, r.fk, shard0)
		kids := []string{putTo(t, r.fk, left, "k", []byte("l")), putTo(t, r.fk, right, "k", []byte("r"))}
		cfg := r.config()
		cfg.InitialPosition, cfg.Retrieval.Mode = checkpoint.TrimHorizon, RetrievalFanOut
		cfg.ShardSyncInterval = time.Second
		reg := prometheus.NewRegistry()
		cfg.Metrics = reg
		k := r.runFanOut(cfg)
		wait.For(t, time.Minute, "5 records", func() bool { return r.rec.count() == 5 })
		recs, events := r.rec.snapshot()
		var got []string
		for _, rec := range recs {
			got = append(got, rec.SequenceNumber)
		}
		if !slices.Equal(got[:3], parent) || !slices.ContainsFunc(got[3:], func(s string) bool { return s == kids[0] }) ||
			!slices.ContainsFunc(got[3:], func(s string) bool { return s == kids[1] }) {
			t.Errorf("delivered %v, want the parent's %v then the children's %v", got, parent, kids)
		}
		if i := slices.Index(events, "ended "+shard0); i < 0 {
			t.Errorf("events %v: the parent did not end", events)
		}
		if got := k.registered(); !slices.Equal(got, []string{"app"}) {
			t.Errorf("consumers registered %v, want [app] (the application's name)", got)
		}
		if n := len(k.calls()); n != 3 {
			t.Errorf("%d SubscribeToShard calls, want 3 (the parent, two children)", n)
		}
		if v := testutil.ToFloat64(newFanOutMetrics(reg).subscriptions.WithLabelValues("started")); v != 3 {
			t.Errorf("kinesis_kcl_subscriptions_total{reason=started} = %v, want 3", v)
		}
	})
}

// RetrievalFanOut needs the fan-out calls on the Kinesis client: New
// rejects one without them.
func TestNewFanOutNeedsFanOutClient(t *testing.T) {
	r := newRig(t)
	cfg := r.config()
	cfg.Retrieval.Mode = RetrievalFanOut
	_, err := New(cfg)
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "SubscribeToShard") {
		t.Fatalf("New = %v, want an ErrInvalidConfig naming SubscribeToShard", err)
	}
}
