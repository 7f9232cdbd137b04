package testenv_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The launcher refuses a busy port at once, naming it, instead of hanging
// until its start deadline.
func TestEmulatorLauncherRejectsBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	free := freePort(t)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../emulators/run", "start")
	env := append(cmd.Environ(),
		fmt.Sprintf("KINESIS_PORT=%d", free),
		fmt.Sprintf("KINESIS_TLS_PORT=%d", freePort(t)),
		fmt.Sprintf("DYNAMODB_PORT=%d", busy),
		"EMULATORS_STATE_DIR="+t.TempDir(),
	)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err == nil {
		stop := exec.Command("../emulators/run", "stop")
		stop.Env = env
		_ = stop.Run()
		t.Fatalf("start on busy port %d succeeded:\n%s", busy, out)
	}
	if ctx.Err() != nil {
		t.Fatalf("start on busy port hung until the test deadline:\n%s", out)
	}
	if want := fmt.Sprintf("port %d", busy); !strings.Contains(string(out), want) {
		t.Fatalf("error does not name the busy port (%q):\n%s", want, out)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
