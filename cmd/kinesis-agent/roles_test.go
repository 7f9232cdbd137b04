package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/integration/proxy"
	"github.com/kinesisgo/kinesis/integration/testenv"
	"github.com/kinesisgo/kinesis/internal/wait"
)

const (
	shipperRole = "arn:aws:iam::123456789012:role/log-shipper"
	shipperKey  = "ASIASHIPPER"
)

// deliveredLines returns the lines a delivery stream has delivered.
func deliveredLines(t *testing.T, px *proxy.Proxy, name string) []string {
	t.Helper()
	b, err := px.FirehoseData(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	return lines[:len(lines)-1] // after the last newline
}

// TestAssumedRolesPerFlow runs three flows through the proxy, which only
// lets the role's access key write to the role's streams and the default
// chain's key ("test") to the other: a flow with assumeRoleARN must sign
// with the credentials STS handed out for the role, a flow without it with
// the default chain's. The role's credentials last 61 s, so with the
// agent's one-minute expiry window they are refreshed within seconds.
func TestAssumedRolesPerFlow(t *testing.T) {
	_, roleStream := testenv.NewStream(t, 1)
	client, plainStream := testenv.NewStream(t, 1)
	px := proxy.StartForTest(t, proxy.Config{
		STS:              &proxy.STSConfig{Roles: map[string]proxy.STSRole{shipperRole: {ExternalID: "ext-7", AccessKeyID: shipperKey}}, Duration: 61 * time.Second},
		Firehose:         &proxy.FirehoseConfig{Dir: t.TempDir()},
		RequireAccessKey: map[string]string{roleStream: shipperKey, "role-fh": shipperKey, plainStream: "test"},
	})
	bin := buildAgent(t)
	dir := t.TempDir()
	logs := map[string]string{}
	for _, n := range []string{"role", "plain", "fh"} {
		logs[n] = filepath.Join(dir, n+".log")
		appendLines(t, logs[n], numbered(n, 0, 100))
	}
	flow := func(n string) map[string]any {
		return map[string]any{"filePattern": logs[n], "initialPosition": "START_OF_FILE", "maxBufferAgeMillis": 100}
	}
	role, plain, fh := flow("role"), flow("plain"), flow("fh")
	role["kinesisStream"], role["assumeRoleARN"], role["assumeRoleExternalId"] = roleStream, shipperRole, "ext-7"
	plain["kinesisStream"] = plainStream
	fh["deliveryStream"], fh["assumeRoleARN"], fh["assumeRoleExternalId"] = "role-fh", shipperRole, "ext-7"
	cfg := writeConfig(t, map[string]any{
		"checkpointFile":   filepath.Join(dir, "cp.json"),
		"kinesis.endpoint": px.URL(), "firehose.endpoint": px.URL(), "sts.endpoint": px.URL(),
		"flows": []any{role, plain, fh},
	})
	p := startAgentProcess(t, bin, cfg)

	newReader(t, client, roleStream).waitAll(numbered("role", 0, 100), 30*time.Second)
	newReader(t, client, plainStream).waitAll(numbered("plain", 0, 100), 30*time.Second)
	wait.For(t, 30*time.Second, "Firehose lines", func() bool { return px.FirehoseDelivered("role-fh") >= 100 })
	if got := deliveredLines(t, px, "role-fh"); strings.Join(got, "") != strings.Join(numbered("fh", 0, 100), "") {
		t.Errorf("delivery folder holds %d lines, want fh 0..99 in order", len(got))
	}
	if n := px.AccessDenied(); n != 0 {
		t.Errorf("%d calls signed with the wrong credentials", n)
	}
	// Credentials are fetched when a call is signed: lines keep coming until
	// one is signed with refreshed credentials, still the role's.
	next := 100
	wait.For(t, 20*time.Second, "credentials refreshed", func() bool {
		appendLines(t, logs["role"], numbered("role", next, 1))
		next++
		return px.AssumeRoleCalls() >= 2
	})
	newReader(t, client, roleStream).waitAll(numbered("role", 0, next), 30*time.Second)
	if n := px.AccessDenied(); n != 0 {
		t.Errorf("%d calls signed with the wrong credentials after the refresh", n)
	}
	if err := p.stop(syscall.SIGTERM); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

// TestAssumeRoleFailureNamesTheRole: a role STS refuses stops the agent at
// start with an error naming the role.
func TestAssumeRoleFailureNamesTheRole(t *testing.T) {
	px := proxy.StartForTest(t, proxy.Config{STS: &proxy.STSConfig{Roles: map[string]proxy.STSRole{shipperRole: {ExternalID: "ext-7"}}}})
	dir := t.TempDir()
	for _, tc := range []struct{ name, arn, ext string }{
		{"unknown role", "arn:aws:iam::123456789012:role/nobody", ""},
		{"wrong external ID", shipperRole, "wrong"},
	} {
		flow := map[string]any{"filePattern": filepath.Join(dir, "x.log"), "kinesisStream": "s", "assumeRoleARN": tc.arn}
		if tc.ext != "" {
			flow["assumeRoleExternalId"] = tc.ext
		}
		cfg := writeConfig(t, map[string]any{
			"checkpointFile": filepath.Join(dir, "cp.json"), "kinesis.endpoint": px.URL(), "sts.endpoint": px.URL(),
			"kinesis.region": "us-east-1", "awsAccessKeyId": "base", "awsSecretAccessKey": "base",
			"flows": []any{flow},
		})
		code, out := runCmd(t, "-config", cfg)
		if code != 1 || !strings.Contains(out, "assuming role "+tc.arn) || !strings.Contains(out, "AccessDenied") {
			t.Errorf("%s: exit %d, output %s; want 1 and an error naming the role", tc.name, code, out)
		}
	}
}
