package process

import (
	"strconv"
	"strings"
	"testing"

	"github.com/kinesisgo/kinesis/agent/config"
)

// Delimiters encoding/csv can never split on are refused when the chain is
// built, naming the delimiter.
func TestNewRejectsUnusableDelimiter(t *testing.T) {
	for _, d := range []string{"\n", "\"", "\r", "\uFFFD", "\x00", ",,"} {
		_, err := New([]config.Option{{Name: config.OptCSVToJSON, CustomFieldNames: []string{"a", "b"}, Delimiter: d}})
		if err == nil || !strings.Contains(err.Error(), "delimiter") || !strings.Contains(err.Error(), strings.Trim(strconv.QuoteToASCII(d), `"`)) {
			t.Errorf("delimiter %q: got %v, want an error naming it", d, err)
		}
	}
	// The zero value is the default, a comma.
	c, err := New([]config.Option{{Name: config.OptCSVToJSON, CustomFieldNames: []string{"a", "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := c.Apply([]byte("1,2\n")); err != nil || string(out) != `{"a":"1","b":"2"}`+"\n" {
		t.Fatalf("%q, %v", out, err)
	}
}

// Records whose values held invalid UTF-8, replaced by U+FFFD in the JSON,
// are counted through OnInvalidUTF8; valid ones are not.
func TestInvalidUTF8IsCounted(t *testing.T) {
	for _, tc := range []struct {
		name string
		opt  config.Option
		bad  string
		good string
	}{
		{"csv", config.Option{Name: config.OptCSVToJSON, CustomFieldNames: []string{"a", "b"}, Delimiter: ","}, "1,caf\xe9\n", "1,café\n"},
		{"log", config.Option{Name: config.OptLogToJSON, LogFormat: config.FormatSyslog}, "Mar  5 10:11:12 web-1 sshd[1]: bad \xff\xfe byte\n", "Mar  5 10:11:12 web-1 sshd[1]: fine ✓\n"},
		{"metadata", config.Option{Name: config.OptAddMetadata}, "raw \xc3\n", "raw ok\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New([]config.Option{tc.opt})
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			c.OnInvalidUTF8 = func() { n++ }
			out, err := c.Apply([]byte(tc.bad))
			if err != nil || !strings.Contains(string(out), `\ufffd`) && !strings.Contains(string(out), "\uFFFD") {
				t.Fatalf("%q, %v: want U+FFFD in the output", out, err)
			}
			if n != 1 {
				t.Errorf("counted %d, want 1", n)
			}
			if _, err := c.Apply([]byte(tc.good)); err != nil || n != 1 {
				t.Errorf("valid record: %v, count %d, want 1", err, n)
			}
		})
	}
}
