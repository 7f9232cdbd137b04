package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

// fanOutProxy starts the limits proxy serving enhanced fan-out in front of
// the emulators, for kinesisctl's --endpoint-url.
func fanOutProxy(t *testing.T, cfg proxy.FanOutConfig) *proxy.Proxy {
	t.Helper()
	return proxy.StartForTest(t, proxy.Config{FanOut: &cfg})
}

func TestConsumersCommands(t *testing.T) {
	t.Parallel()
	p := fanOutProxy(t, proxy.FanOutConfig{ConsumerDelay: 300 * time.Millisecond})
	_, stream := testenv.NewStream(t, 1)
	ep := []string{"--endpoint-url", p.URL()}

	out := mustRun(t, append(ep, "consumers", "register", stream, "app")...).stdout
	if !strings.Contains(out, "registered app (ACTIVE)") || !strings.Contains(out, ":stream/"+stream+"/consumer/app:") {
		t.Errorf("register printed %q, want the ACTIVE consumer and its ARN", out)
	}
	mustRun(t, append(ep, "consumers", "register", stream, "other", "--no-wait")...)
	wantExit(t, kctl(t, append(ep, "consumers", "register", stream, "app")...), exitConflict, "already exists")

	var list []consumerInfo
	if err := json.Unmarshal([]byte(mustRun(t, append(ep, "--json", "consumers", "list", stream)...).stdout), &list); err != nil {
		t.Fatalf("consumers list --json: %v", err)
	}
	if len(list) != 2 || list[0].Name != "app" || list[0].Status != "ACTIVE" || list[1].Name != "other" || list[0].Created == nil {
		t.Errorf("consumers list: %+v, want app (ACTIVE) and other", list)
	}
	table := mustRun(t, append(ep, "consumers", "list", stream)...).stdout
	if !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "app") {
		t.Errorf("consumers list table:\n%s", table)
	}

	mustRun(t, append(ep, "consumers", "deregister", stream, "app")...)
	wait.For(t, 10*time.Second, "the deregistered consumer to go", func() bool {
		return !strings.Contains(mustRun(t, append(ep, "consumers", "list", stream)...).stdout, "app")
	})
	wantExit(t, kctl(t, append(ep, "consumers", "deregister", stream, "app")...), exitNotFound, `consumer "app"`)
	wantExit(t, kctl(t, append(ep, "consumers", "list", stream+"-missing")...), exitNotFound, "not found")
	wantExit(t, kctl(t, append(ep, "consumers", "register", stream)...), exitUsage, "STREAM NAME")
}

// tail --consumer reads every shard with SubscribeToShard, parents before
// children, the same records as polling tail.
func TestTailConsumer(t *testing.T) {
	t.Parallel()
	p := fanOutProxy(t, proxy.FanOutConfig{ConsumerDelay: -1})
	client, stream := testenv.NewStream(t, 2)
	keys := []string{"alpha", "beta", "gamma"}
	for _, k := range keys {
		putPlain(t, client, stream, k, lines(k+"-plain", 4)...)
		putAggregated(t, client, stream, k, lines(k+"-agg", 10)...)
	}
	mustRun(t, "split", stream, "0")
	for _, k := range keys {
		putPlain(t, client, stream, k, lines(k+"-after", 3)...)
	}
	ep := []string{"--endpoint-url", p.URL()}
	wantExit(t, kctl(t, append(ep, "tail", stream, "--consumer", "app")...), exitNotFound, `consumer "app"`)
	mustRun(t, append(ep, "consumers", "register", stream, "app")...)

	polled := decodeLines(t, mustRun(t, "tail", stream, "--json").stdout)
	pushed := decodeLines(t, mustRun(t, append(ep, "tail", stream, "--json", "--consumer", "app")...).stdout)
	byKey := func(recs []tailRecord) map[string][]string {
		m := map[string][]string{}
		for _, r := range recs {
			m[r.PartitionKey] = append(m[r.PartitionKey], *r.Data)
		}
		return m
	}
	want, got := byKey(polled), byKey(pushed)
	for _, k := range keys {
		if len(want[k]) != 17 {
			t.Fatalf("polling tail: %d records of %s, want 17", len(want[k]), k)
		}
		if strings.Join(got[k], ",") != strings.Join(want[k], ",") {
			t.Errorf("key %s: fan-out tail read\n%v\npolling tail\n%v", k, got[k], want[k])
		}
	}
	if st := p.FanOutStats(); st.Subscriptions < 3 {
		t.Errorf("%d subscriptions, want one per shard (3)", st.Subscriptions)
	}
}

// tail --consumer --follow renews subscriptions as they end, from the
// continuation sequence number: no record lost or read twice.
func TestTailConsumerRenews(t *testing.T) {
	t.Parallel()
	p := fanOutProxy(t, proxy.FanOutConfig{ConsumerDelay: -1, SubscriptionLifetime: 1500 * time.Millisecond})
	client, stream := testenv.NewStream(t, 1)
	ep := []string{"--endpoint-url", p.URL()}
	mustRun(t, append(ep, "consumers", "register", stream, "app")...)
	putPlain(t, client, stream, "k", lines("before", 5)...)

	done := make(chan result, 1)
	go func() { done <- kctl(t, append(ep, "tail", stream, "--consumer", "app", "--follow", "--max", "10")...) }()
	wait.For(t, 20*time.Second, "two subscriptions to end", func() bool { return p.FanOutStats().Expired >= 2 })
	putPlain(t, client, stream, "k", lines("after", 5)...)
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("tail --follow --max 10 did not stop within 30s")
	}
	if r.code != 0 {
		t.Fatalf("tail: exit %d: %s", r.code, r.stderr)
	}
	want := strings.Join(append(lines("before", 5), lines("after", 5)...), "\n") + "\n"
	if r.stdout != want {
		t.Errorf("tail printed\n%s\nwant\n%s", r.stdout, want)
	}
}
