package testenv_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
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

// The emulators accept connections on loopback only: every socket listening
// on their ports (kinesis-mock's plain and TLS ports, dynalite's) is bound
// to a loopback address, and a non-loopback address of this host refuses.
func TestEmulatorsListenOnLoopbackOnly(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI is set but node is not installed: %v", err)
		}
		t.Skip("node is not installed")
	}
	free := freePorts(t, 3)
	ports := map[string]int{"kinesis-mock": free[0], "kinesis-mock TLS": free[1], "dynalite": free[2]}
	env := append(os.Environ(),
		fmt.Sprintf("KINESIS_PORT=%d", ports["kinesis-mock"]),
		fmt.Sprintf("KINESIS_TLS_PORT=%d", ports["kinesis-mock TLS"]),
		fmt.Sprintf("DYNAMODB_PORT=%d", ports["dynalite"]),
		"EMULATORS_STATE_DIR="+t.TempDir(),
	)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := exec.CommandContext(ctx, "../emulators/run", "start")
	start.Env = env
	t.Cleanup(func() {
		stop := exec.Command("../emulators/run", "stop")
		stop.Env = env
		if out, err := stop.CombinedOutput(); err != nil {
			t.Errorf("run stop: %v\n%s", err, out)
		}
	})
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("run start: %v\n%s", err, out)
	}

	listening := listeningAddrs(t)
	for name, port := range ports {
		addrs := listening[port]
		if len(addrs) == 0 {
			t.Errorf("%s: nothing listens on port %d", name, port)
		}
		for _, ip := range addrs {
			if !ip.IsLoopback() {
				t.Errorf("%s listens on %s port %d, not on loopback only", name, ip, port)
			}
		}
	}

	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ifaddrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		for name, port := range ports {
			addr := net.JoinHostPort(ipn.IP.String(), strconv.Itoa(port))
			if c, err := net.DialTimeout("tcp", addr, 2*time.Second); err == nil {
				c.Close()
				t.Errorf("%s accepts connections on %s", name, addr)
			}
		}
	}
}

// freePorts returns n distinct loopback ports nothing listens on.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close() // held until all are chosen, so that they differ
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// listeningAddrs reads /proc/net/tcp and /proc/net/tcp6: the local
// addresses of the sockets in state LISTEN, by port.
func listeningAddrs(t *testing.T) map[int][]net.IP {
	t.Helper()
	out := map[int][]net.IP{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if err != nil {
			t.Skipf("no %s: %v", file, err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "0A" { // 0A: TCP_LISTEN
				continue
			}
			host, portHex, ok := strings.Cut(fields[1], ":")
			if !ok {
				t.Fatalf("%s: bad local address %q", file, fields[1])
			}
			port, err := strconv.ParseUint(portHex, 16, 16)
			if err != nil {
				t.Fatalf("%s: bad port %q", file, portHex)
			}
			ip, err := procIP(host)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			out[int(port)] = append(out[int(port)], ip)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// procIP decodes an address of /proc/net/tcp{,6}: hexadecimal 32-bit words,
// each in the host's byte order (little-endian on the machines we run on).
func procIP(s string) (net.IP, error) {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return nil, fmt.Errorf("bad address %q", s)
	}
	ip := make(net.IP, len(b))
	for i := 0; i < len(b); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	return ip, nil
}
