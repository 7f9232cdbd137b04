package offsets

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzCheckpointFile: any content either is refused or decodes to entries
// with no negative offset or fingerprint size, which encode (as Save does)
// and decode again to the same entries.
func FuzzCheckpointFile(f *testing.F) {
	for _, seed := range []string{
		`{"version":1,"flows":{}}`,
		`{"version":1,"flows":{"/var/log/app.log*:stream":[{"path":"/var/log/app.log","dev":2049,"inode":131,"fingerprint":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","fingerprintSize":1024,"offset":52311}]}}`,
		`{"version":1,"flows":{"a":[],"b":null}}`,
		`{"version":1,"flows":{"a":[{"path":"/x","offset":-1}]}}`,
		`{"version":1,"flows":{"a":[{"path":"/x","fingerprintSize":-1}]}}`,
		`{"version":2,"flows":{}}`,
		`{"version":1,"flows":{"a":[{"offset":9223372036854775807,"inode":18446744073709551615}]}}`,
		`{"version":1,"flows":{"a":[{"offset":1e3}]}}`,
		`{"version":1}`,
		`[]`,
		`null`,
		`{not json`,
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		flows, err := parse(b)
		if err != nil {
			return
		}
		for flow, entries := range flows {
			for _, e := range entries {
				if e.Offset < 0 || e.FingerprintSize < 0 {
					t.Fatalf("flow %q: accepted %+v", flow, e)
				}
			}
		}
		enc, err := json.MarshalIndent(document{Version: 1, Flows: flows}, "", " ")
		if err != nil {
			t.Fatalf("accepted content does not encode: %v", err)
		}
		again, err := parse(enc)
		if err != nil {
			t.Fatalf("saved content is refused: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(flows, again) {
			t.Fatalf("round trip changed the entries:\n%v\n%v", flows, again)
		}
	})
}
