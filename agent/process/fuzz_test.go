package process

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kinesisgo/kinesis/agent/config"
)

// checkObject asserts that out is one JSON object with exactly the keys
// names, in valid UTF-8, followed by a newline, and returns its values.
func checkObject(t *testing.T, out []byte, names []string) map[string]*string {
	t.Helper()
	body, ok := bytes.CutSuffix(out, []byte("\n"))
	if !ok || !utf8.Valid(out) || !json.Valid(body) {
		t.Fatalf("output %q is not JSON in UTF-8 and a newline", out)
	}
	var m map[string]*string
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := slices.Compact(slices.Sorted(slices.Values(names)))
	if !slices.Equal(keys, want) {
		t.Fatalf("output %q has keys %q, want %q", out, keys, want)
	}
	return m
}

// FuzzLogToJSON: every line is either refused with ErrUnparsed (and passed
// on unchanged) or turned into a JSON object in UTF-8 with the format's
// fields; invalid UTF-8 is counted only when the line held some.
func FuzzLogToJSON(f *testing.F) {
	formats := []string{config.FormatCommonApache, config.FormatCombinedApache, config.FormatApacheError, config.FormatSyslog, config.FormatRFC3339Syslog}
	for i, line := range []string{
		`64.242.88.10 - - [07/Mar/2004:16:10:02 -0800] "GET /mailman/listinfo/hsdivision HTTP/1.1" 200 6291`,
		`127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"`,
		`[Fri Sep 09 10:42:29.902022 2011] [core:error] [pid 35708:tid 4328636416] [client 72.15.99.187] File does not exist: /favicon.ico`,
		"Mar  5 10:11:12 web-1 sshd[1234]: Accepted publickey for ec2-user from 10.0.0.5 port 50000 ssh2",
		"2024-03-05T10:11:12.123456+00:00 web-1 systemd[1]: Started Session 4 of user root.",
		"Mar  5 10:11:12 web-1 sshd[1]: bad \xff\xfe byte",
		`1.2.3.4 - - [x] "GET /\"q\" HTTP/1.1" - -`,
		"not a log line",
		"",
	} {
		f.Add(line+"\n", uint8(i), false)
		f.Add(line+"\r\n", uint8(i+1), true)
	}
	f.Fuzz(func(t *testing.T, line string, format uint8, custom bool) {
		opt := config.Option{Name: config.OptLogToJSON, LogFormat: formats[int(format)%len(formats)]}
		names := formatFields(opt.LogFormat)
		if custom {
			opt.MatchPattern = regexp.MustCompile(`^(\w*)=(.*)$`)
			opt.CustomFieldNames = []string{"key", "value"}
			names = opt.CustomFieldNames
		}
		c, err := New([]config.Option{opt})
		if err != nil {
			t.Fatal(err)
		}
		counted := 0
		c.OnInvalidUTF8 = func() { counted++ }
		out, err := c.Apply([]byte(line))
		if err != nil {
			if !errors.Is(err, ErrUnparsed) || string(out) != line || counted != 0 {
				t.Fatalf("%q: %v, %q, counted %d: want ErrUnparsed with the line unchanged, nothing counted", line, err, out, counted)
			}
			return
		}
		checkObject(t, out, names)
		if counted > 1 || counted == 1 && utf8.ValidString(line) {
			t.Fatalf("%q: counted %d invalid UTF-8 records", line, counted)
		}
	})
}

func formatFields(name string) []string { return formats[name].fields }

// FuzzCSVToJSON: a delimiter is refused when the chain is built or every
// line is either refused with ErrUnparsed or turned into a JSON object with
// the customFieldNames as keys; a line without quotes or line breaks has as
// values its fields split at the delimiter.
func FuzzCSVToJSON(f *testing.F) {
	for _, s := range []struct {
		line  string
		delim rune
	}{
		{"42,\"Smith, Jane\",\"said \"\"hi\"\"\"\n", ','},
		{"1\t2\n", '\t'},
		{"a|b|c|d\n", '|'},
		{"a|b|c|d|e\n", '|'},
		{"1,caf\xe9\n", ','},
		{"x;\"unterminated\n", ';'},
		{"é€ü\n", '€'},
		{"\n", ','},
		{"a,b\n", '"'},
		{"a\nb\n", '\n'},
		{"a,b\n", 0xFFFD},
	} {
		f.Add(s.line, s.delim)
	}
	names := []string{"a", "b", "c", "d"}
	f.Fuzz(func(t *testing.T, line string, delim rune) {
		d := string(delim)
		c, err := New([]config.Option{{Name: config.OptCSVToJSON, CustomFieldNames: names, Delimiter: d}})
		if bad := strings.ContainsRune("\"\r\n\x00\uFFFD", delim) || !utf8.ValidRune(delim); err != nil || bad {
			if bad != errors.Is(err, ErrDelimiter) {
				t.Fatalf("delimiter %q: %v", d, err)
			}
			return
		}
		counted := 0
		c.OnInvalidUTF8 = func() { counted++ }
		out, err := c.Apply([]byte(line))
		plain := strings.TrimSuffix(line, "\n")
		simple := plain != "" && !strings.ContainsAny(plain, "\"\r\n")
		if err != nil {
			if !errors.Is(err, ErrUnparsed) || string(out) != line || counted != 0 {
				t.Fatalf("%q: %v, %q: want ErrUnparsed with the line unchanged", line, err, out)
			}
			if simple && len(strings.Split(plain, d)) <= len(names) {
				t.Fatalf("%q split at %q is %d fields but was refused: %v", line, d, len(strings.Split(plain, d)), err)
			}
			return
		}
		m := checkObject(t, out, names)
		if counted > 1 || counted == 1 && utf8.ValidString(line) {
			t.Fatalf("%q: counted %d invalid UTF-8 records", line, counted)
		}
		if !simple || !utf8.ValidString(line) {
			return
		}
		fields := strings.Split(plain, d)
		for i, n := range names {
			switch v := m[n]; {
			case i < len(fields) && (v == nil || *v != fields[i]):
				t.Fatalf("%q: %s = %v, want %q", line, n, v, fields[i])
			case i >= len(fields) && v != nil:
				t.Fatalf("%q: %s = %q, want null", line, n, *v)
			}
		}
	})
}
