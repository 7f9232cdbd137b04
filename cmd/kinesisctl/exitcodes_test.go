package main

import (
	"strings"
	"testing"
)

// Malformed values are usage errors (exit 2) found before any AWS call:
// each case points kinesisctl at a closed port, so a value that slipped
// through would end as "cannot reach" (5) instead.
func TestMalformedValuesAreUsageErrors(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	closed := "http://" + closedPort(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		hints []string
	}{
		{"put a directory", []string{"--endpoint-url", closed, "put", "s", dir}, []string{dir, "directory"}},
		{"endpoint without scheme", []string{"--endpoint-url", "garbage", "stream", "list"}, []string{"--endpoint-url", "garbage"}},
		{"endpoint host:port", []string{"--endpoint-url", "127.0.0.1:4568", "stream", "list"}, []string{"--endpoint-url", "http://"}},
		{"endpoint unparsable", []string{"--endpoint-url", "http://[::1", "stream", "list"}, []string{"--endpoint-url", "http://[::1"}},
		{"endpoint other scheme", []string{"--endpoint-url", "ftp://127.0.0.1:1", "stream", "list"}, []string{"--endpoint-url", "ftp"}},
		{"endpoint without host", []string{"--endpoint-url", "http://", "stream", "list"}, []string{"--endpoint-url", "host"}},
		{"bad region", []string{"--endpoint-url", closed, "--region", "bad region!", "stream", "list"}, []string{"--region", "bad region!"}},
		{"partition key not UTF-8", []string{"--endpoint-url", closed, "put", "s", "--partition-key", "k\xff"}, []string{"--partition-key", "UTF-8"}},
		{"empty partition key", []string{"--endpoint-url", closed, "put", "s", "--partition-key", ""}, []string{"--partition-key", "empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := kctlIn(t, "a line\n", tc.args...)
			wantExit(t, r, exitUsage, tc.hints...)
			if r.stdout != "" {
				t.Errorf("a usage error printed a result:\n%s", r.stdout)
			}
		})
	}
}

// A malformed endpoint or region from the environment is reported as one,
// naming the variable.
func TestMalformedEnvironment(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", "")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ENDPOINT_URL_KINESIS", "localhost:4568")
	wantExit(t, kctl(t, "stream", "list"), exitUsage, "AWS_ENDPOINT_URL_KINESIS", "localhost:4568")

	t.Setenv("AWS_ENDPOINT_URL_KINESIS", "http://"+closedPort(t))
	t.Setenv("AWS_REGION", "eu west 1")
	wantExit(t, kctl(t, "stream", "list"), exitUsage, "region", "eu west 1")
}

// A password in an endpoint URL never reaches the messages.
func TestEndpointPasswordRedacted(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	const secret = "s3cret-pw"
	for _, tc := range []struct {
		endpoint string
		code     int
	}{
		{"http://user:" + secret + "@" + closedPort(t), exitUnreachable},
		{"http://user:" + secret + "@[::1", exitUsage},
		{"user:" + secret + "@127.0.0.1:1", exitUsage},
	} {
		for _, args := range [][]string{{"stream", "list"}, {"leases", "app"}, {"tail", "s"}} {
			r := kctl(t, append([]string{"--endpoint-url", tc.endpoint}, args...)...)
			wantExit(t, r, tc.code)
			if strings.Contains(r.stderr+r.stdout, secret) {
				t.Errorf("%s with %s: the password is printed:\n%s", args[0], tc.endpoint, r.stderr)
			}
			if tc.code == exitUnreachable && !strings.Contains(r.stderr, "user:xxxxx@") {
				t.Errorf("%s: the endpoint is not shown redacted:\n%s", args[0], r.stderr)
			}
		}
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"cannot reach http://u:pw@h:1: refused":        "cannot reach http://u:xxxxx@h:1: refused",
		`Post "https://u:p%40w@h/x": dial`:             `Post "https://u:xxxxx@h/x": dial`,
		"http://u@h/ has no password":                  "http://u@h/ has no password",
		"bad http://u:pw@[::1 and https://a:b@c/d?e#f": "bad http://u:xxxxx@[::1 and https://a:xxxxx@c/d?e#f",
		"u:pw@host:1 without a scheme":                 "u:xxxxx@host:1 without a scheme",
		"http://u:p@ss@host/":                          "http://u:xxxxx@host/",
		"no URL here: a:b":                             "no URL here: a:b",
		"u:a://b@h has no scheme":                      "u:xxxxx@h has no scheme",
		"0://@0":                                       "0:xxxxx@0",
	} {
		if got := redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}
