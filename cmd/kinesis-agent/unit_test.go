package main

import (
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/agent/config"
)

// TestUnitStopTimeoutAboveTheShutdown checks that systemd waits longer for
// the agent to stop (TimeoutStopSec) than the agent's whole shutdown with
// the default shutdownTimeoutMillis, with room left to save the offsets,
// and that the unit runs as its dedicated user.
func TestUnitStopTimeoutAboveTheShutdown(t *testing.T) {
	b, err := os.ReadFile("kinesis-agent.service")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^TimeoutStopSec=(\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no TimeoutStopSec in the unit")
	}
	stop, err := time.ParseDuration(string(m[1]))
	if err != nil {
		t.Fatalf("TimeoutStopSec=%s: %v", m[1], err)
	}
	f, err := config.Parse([]byte(`{"flows":[{"filePattern":"/var/log/app.log","kinesisStream":"s"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if stop < f.ShutdownTimeout+5*time.Second {
		t.Errorf("TimeoutStopSec %v: want at least the default shutdown %v plus 5 s", stop, f.ShutdownTimeout)
	}
	if !regexp.MustCompile(`(?m)^User=kinesis-agent$`).Match(b) {
		t.Error("the unit does not run as the kinesis-agent user")
	}
}
