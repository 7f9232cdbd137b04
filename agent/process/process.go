// Package process applies the Kinesis Agent data processing options to
// records: SINGLELINE, CSVTOJSON, LOGTOJSON and ADDMETADATA.
//
// Records are lines as read from the file, usually ending in a newline. Each
// option reads the record without its trailing newline and writes its result
// followed by one newline.
package process

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
	"unicode/utf8"

	"github.com/kinesisgo/kinesis/agent/config"
)

// ErrUnparsed reports a record that a CSVTOJSON or LOGTOJSON option could not
// parse. The caller decides whether to send the record unchanged or drop it.
var ErrUnparsed = errors.New("record does not match the expected format")

// Chain applies options in order. The zero Chain passes records unchanged.
type Chain struct {
	steps []step
	// Now returns the time stamped by ADDMETADATA. Default time.Now.
	Now func() time.Time
	// OnInvalidUTF8 is called once for each record Apply returns processed
	// in which invalid UTF-8 was replaced by U+FFFD: JSON text holds only
	// UTF-8, so a CSVTOJSON or LOGTOJSON value, or ADDMETADATA data, with
	// other bytes cannot be written as they are. Default none.
	OnInvalidUTF8 func()
}

// step is one option: it returns the processed record and whether invalid
// UTF-8 in it was replaced.
type step func([]byte) ([]byte, bool, error)

// ErrDelimiter reports a CSVTOJSON delimiter that can never separate fields.
var ErrDelimiter = errors.New("unusable CSVTOJSON delimiter")

// delimiter returns the rune d names: "" is a comma; a quote, carriage
// return, newline, NUL, U+FFFD (what invalid UTF-8 reads as) or more than
// one character are refused, as no record could ever be split on them.
func delimiter(d string) (rune, error) {
	if d == "" {
		return ',', nil
	}
	r := []rune(d)
	if len(r) != 1 {
		return 0, fmt.Errorf("%w %+q: not one character", ErrDelimiter, d)
	}
	switch r[0] {
	case '"', '\r', '\n', 0, utf8.RuneError:
		return 0, fmt.Errorf("%w %+q: CSV fields cannot be separated by a quote, a line break, NUL or U+FFFD", ErrDelimiter, d)
	}
	return r[0], nil
}

// Log format expressions and their field names. A "-" or absent group
// becomes JSON null.
var formats = map[string]struct {
	re     *regexp.Regexp
	fields []string
}{
	config.FormatCommonApache: {
		regexp.MustCompile(`^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}|-) (\d+|-)$`),
		[]string{"host", "ident", "authuser", "datetime", "request", "response", "bytes"},
	},
	config.FormatCombinedApache: {
		regexp.MustCompile(`^(\S+) (\S+) (\S+) \[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}|-) (\d+|-) "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)"$`),
		[]string{"host", "ident", "authuser", "datetime", "request", "response", "bytes", "referer", "agent"},
	},
	config.FormatApacheError: {
		regexp.MustCompile(`^\[([^\]]+)\] \[(?:([^:\]]+):)?([^\]]+)\] (?:\[pid (\d+)(?::tid (\d+))?\] )?(?:\[client ([^\]]+)\] )?(.*)$`),
		[]string{"timestamp", "module", "severity", "processid", "threadid", "client", "message"},
	},
	config.FormatSyslog: {
		regexp.MustCompile(`^([A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2}) (\S+) ([^:\[\s]+)(?:\[(\d+)\])?: ?(.*)$`),
		[]string{"timestamp", "hostname", "program", "processid", "message"},
	},
	config.FormatRFC3339Syslog: {
		regexp.MustCompile(`^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})) (\S+) ([^:\[\s]+)(?:\[(\d+)\])?: ?(.*)$`),
		[]string{"timestamp", "hostname", "program", "processid", "message"},
	},
}

// New builds the chain for opts, as parsed by package config.
func New(opts []config.Option) (*Chain, error) {
	c := &Chain{}
	for i, o := range opts {
		var step step
		switch o.Name {
		case config.OptSingleLine:
			step = singleLine
		case config.OptCSVToJSON:
			delim, err := delimiter(o.Delimiter)
			if err != nil {
				return nil, fmt.Errorf("process: option %d: %w", i, err)
			}
			step = csvToJSON(o.CustomFieldNames, delim)
		case config.OptLogToJSON:
			f, ok := formats[o.LogFormat]
			if !ok {
				return nil, fmt.Errorf("process: option %d: unknown logFormat %q", i, o.LogFormat)
			}
			re, names := f.re, f.fields
			if o.MatchPattern != nil {
				re = o.MatchPattern
			}
			if len(o.CustomFieldNames) > 0 {
				names = o.CustomFieldNames
			}
			if re.NumSubexp() != len(names) {
				return nil, fmt.Errorf("process: option %d: %s has %d fields but %d names are given", i, o.LogFormat, re.NumSubexp(), len(names))
			}
			step = logToJSON(re, names)
		case config.OptAddMetadata:
			step = c.addMetadata(o.Timestamp, o.Metadata)
		default:
			return nil, fmt.Errorf("process: option %d: unknown optionName %q", i, o.Name)
		}
		c.steps = append(c.steps, step)
	}
	return c, nil
}

// Empty reports whether the chain has no options.
func (c *Chain) Empty() bool { return len(c.steps) == 0 }

// Apply runs rec through every option. On an error wrapping ErrUnparsed the
// returned record is rec unchanged.
func (c *Chain) Apply(rec []byte) ([]byte, error) {
	out := rec
	replaced := false
	for _, step := range c.steps {
		next, r, err := step(out)
		if err != nil {
			return rec, err
		}
		out, replaced = next, replaced || r
	}
	if replaced && c.OnInvalidUTF8 != nil {
		c.OnInvalidUTF8()
	}
	return out, nil
}

func trimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// singleLine joins the lines of a multi-line record, dropping each line's
// leading and trailing white space.
func singleLine(rec []byte) ([]byte, bool, error) {
	out := make([]byte, 0, len(rec)+1)
	for _, l := range bytes.Split(trimNewline(rec), []byte("\n")) {
		out = append(out, bytes.TrimSpace(l)...)
	}
	return append(out, '\n'), false, nil
}

// appendObject writes {"name":value,...} in the order of names; a nil value
// is null. It reports whether a value held invalid UTF-8, written as U+FFFD.
func appendObject(out []byte, names []string, values []*string) ([]byte, bool) {
	replaced := false
	out = append(out, '{')
	for i, n := range names {
		if i > 0 {
			out = append(out, ',')
		}
		k, _ := json.Marshal(n)
		out = append(append(out, k...), ':')
		if values[i] == nil {
			out = append(out, "null"...)
			continue
		}
		v, _ := json.Marshal(*values[i])
		out = append(out, v...)
		replaced = replaced || !utf8.ValidString(*values[i])
	}
	return append(out, '}'), replaced
}

func csvToJSON(names []string, delim rune) step {
	return func(rec []byte) ([]byte, bool, error) {
		r := csv.NewReader(bytes.NewReader(trimNewline(rec)))
		r.Comma = delim
		r.FieldsPerRecord = -1
		r.LazyQuotes = true
		fields, err := r.Read()
		if err != nil {
			return nil, false, fmt.Errorf("%w: CSV: %v", ErrUnparsed, err)
		}
		if len(fields) > len(names) {
			return nil, false, fmt.Errorf("%w: CSV: %d fields, only %d customFieldNames", ErrUnparsed, len(fields), len(names))
		}
		values := make([]*string, len(names))
		for i := range fields {
			values[i] = &fields[i]
		}
		out, replaced := appendObject(nil, names, values)
		return append(out, '\n'), replaced, nil
	}
}

func logToJSON(re *regexp.Regexp, names []string) step {
	return func(rec []byte) ([]byte, bool, error) {
		line := trimNewline(rec)
		m := re.FindSubmatchIndex(line)
		if m == nil {
			return nil, false, fmt.Errorf("%w: does not match the log format", ErrUnparsed)
		}
		values := make([]*string, len(names))
		for i := range names {
			a, b := m[2*i+2], m[2*i+3]
			if a < 0 {
				continue
			}
			if v := string(line[a:b]); v != "-" {
				values[i] = &v
			}
		}
		out, replaced := appendObject(nil, names, values)
		return append(out, '\n'), replaced, nil
	}
}

// addMetadata wraps the record as {"metadata":{...},"timestamp":"...","data":...}.
// data is the record itself when it is a JSON value (as produced by an
// earlier LOGTOJSON or CSVTOJSON option), else the record as a JSON string.
func (c *Chain) addMetadata(stamp bool, meta map[string]any) step {
	metaJSON := []byte("{}")
	if len(meta) > 0 {
		metaJSON, _ = json.Marshal(meta) // decoded from JSON, so it encodes
	}
	return func(rec []byte) ([]byte, bool, error) {
		line := trimNewline(rec)
		replaced := !utf8.Valid(line)
		out := append([]byte(`{"metadata":`), metaJSON...)
		if stamp {
			now := time.Now
			if c.Now != nil {
				now = c.Now
			}
			out = append(out, `,"timestamp":"`...)
			out = now().UTC().AppendFormat(out, "2006-01-02T15:04:05.000Z07:00")
			out = append(out, '"')
		}
		out = append(out, `,"data":`...)
		if trimmed := bytes.TrimSpace(line); len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') && json.Valid(trimmed) {
			// Outside its strings JSON is ASCII: replacing invalid UTF-8
			// keeps it valid.
			out = append(out, bytes.ToValidUTF8(trimmed, []byte("\uFFFD"))...)
		} else {
			s, _ := json.Marshal(string(line))
			out = append(out, s...)
		}
		return append(out, "}\n"...), replaced, nil
	}
}
