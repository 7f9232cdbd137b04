package main

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	kintypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// maxHashKey is 2^128-1, the largest hash key.
var maxHashKey = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))

// FuzzParseHashKey checks --at against an oracle: a hash key is accepted
// exactly when it is a decimal number of at most 39 digits in [0, 2^128-1],
// and then it is that number; anything else is a usage error quoting it.
func FuzzParseHashKey(f *testing.F) {
	for _, s := range []string{"0", "1", "170141183460469231731687303715884105728", maxHashKey.String(),
		"340282366920938463463374607431768211456", "0000000000000000000000000000000000000001", "007",
		"", "-1", "+1", "1e3", " 1", "1 ", "0x10", "١٢٣", "99999999999999999999999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := parseHashKey("--at", s)
		valid := s != "" && len(s) <= 39 && strings.Trim(s, "0123456789") == ""
		var want *big.Int
		if valid {
			want, _ = new(big.Int).SetString(s, 10)
			valid = want.Cmp(maxHashKey) <= 0
		}
		if !valid {
			if err == nil {
				t.Fatalf("parseHashKey(%q) = %s, want an error", s, k)
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(ee.msg, fmt.Sprintf("%q", s)) {
				t.Fatalf("parseHashKey(%q): error %v, want a usage error quoting the value", s, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("parseHashKey(%q): %v, want %s", s, err, want)
		}
		if k.Big().Cmp(want) != 0 || k.String() != want.String() {
			t.Fatalf("parseHashKey(%q) = %s (%s), want %s", s, k, k.Big(), want)
		}
	})
}

// FuzzParseShardID checks that a shard argument is accepted exactly as a
// full shard ID or a number of at most 12 digits, and names that shard.
func FuzzParseShardID(f *testing.F) {
	for _, s := range []string{"3", "0", "000", "999999999999", "1000000000000", "shardId-000000000012",
		"shardId-1", "shardid-000000000001", "-1", "+1", " 1", "shardId-00000000001x", "١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseShardID(s)
		if err != nil {
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage {
				t.Fatalf("parseShardID(%q): error %v, want a usage error", s, err)
			}
			if shardIDPattern.MatchString(s) {
				t.Fatalf("parseShardID(%q) rejects a shard ID", s)
			}
			return
		}
		if !shardIDPattern.MatchString(id) {
			t.Fatalf("parseShardID(%q) = %q, not a shard ID", s, id)
		}
		if id != s {
			n, ok := new(big.Int).SetString(s, 10)
			if !ok || strings.Trim(s, "0123456789") != "" || fmt.Sprintf("shardId-%012d", n) != id {
				t.Fatalf("parseShardID(%q) = %q", s, id)
			}
		}
	})
}

// FuzzParseFrom checks tail --from: the keywords TRIM_HORIZON and LATEST
// in any ASCII case, else an RFC 3339 time that reads back as itself, else
// a usage error quoting the value.
func FuzzParseFrom(f *testing.F) {
	for _, s := range []string{"TRIM_HORIZON", "latest", "Latest", "2026-01-02T15:04:05Z", "2026-01-02T15:04:05.123456789+05:30",
		"2026-01-02T15:04:05", "2026-01-02", "1969-12-31T23:59:59Z", "9999-12-31T23:59:59.999999999-23:59", "0000-01-01T00:00:00Z",
		"2026-02-30T00:00:00Z", "2026-01-02T24:00:00Z", "2026-01-02t15:04:05z", "", "now", "LATEST ", "laTEST\x00",
		"lateſt", "trım_horizon"} { // letters that upper-case to ASCII ones

		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pos, err := parseFrom(s)
		if err != nil {
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage || !strings.Contains(ee.msg, fmt.Sprintf("%q", s)) {
				t.Fatalf("parseFrom(%q): error %v, want a usage error quoting the value", s, err)
			}
			if upperASCII(s) == "TRIM_HORIZON" || upperASCII(s) == "LATEST" {
				t.Fatalf("parseFrom(%q) rejects a keyword", s)
			}
			return
		}
		switch pos.kind {
		case kintypes.ShardIteratorTypeTrimHorizon, kintypes.ShardIteratorTypeLatest:
			if upperASCII(s) != string(pos.kind) {
				t.Fatalf("parseFrom(%q) = %s", s, pos.kind)
			}
		case kintypes.ShardIteratorTypeAtTimestamp:
			back, err := time.Parse(time.RFC3339Nano, pos.at.Format(time.RFC3339Nano))
			if err != nil || !back.Equal(pos.at) {
				t.Fatalf("parseFrom(%q) = %v, which reads back as %v, %v", s, pos.at, back, err)
			}
		default:
			t.Fatalf("parseFrom(%q) = %+v", s, pos)
		}
	})
}

// FuzzRedact checks that a password in an endpoint URL never survives
// redact, with or without a scheme, and that redacting twice changes
// nothing more.
func FuzzRedact(f *testing.F) {
	f.Add("user", "s3cret", "127.0.0.1:4568", "cannot reach %s: refused")
	f.Add("", "pw", "[::1", "bad --endpoint-url %q")
	f.Add("u", "p:w@x", "host/path?q#f", "Post \"%s\": dial")
	f.Add("u", "", "h", "%s")
	f.Fuzz(func(t *testing.T, user, pw, host, format string) {
		if strings.ContainsAny(user, wordBreaks+":@") || strings.ContainsAny(pw+host, wordBreaks) ||
			strings.Contains(host, "@") || pw == "" || strings.Contains(redacted, pw) ||
			strings.Count(format, "%") != 1 || !strings.Contains(format, "%s") && !strings.Contains(format, "%q") {
			return
		}
		endpoints := []string{"http://" + user + ":" + pw + "@" + host}
		if !strings.HasPrefix(pw, "//") { // else user://... is a URL without a password
			endpoints = append(endpoints, user+":"+pw+"@"+host)
		}
		for _, endpoint := range endpoints {
			msg := fmt.Sprintf(format, endpoint)
			out := redact(msg)
			if strings.Contains(out, ":"+pw+"@") {
				t.Fatalf("redact(%q) = %q: the password is still there", msg, out)
			}
			if again := redact(out); again != out {
				t.Fatalf("redact(%q) = %q, but redact of that is %q", msg, out, again)
			}
		}
	})
}
