package offsets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Content a checkpoint file of this agent never holds is refused at Open,
// naming the flow and the file.
func TestOpenRejectsInvalidEntries(t *testing.T) {
	for _, tc := range []struct{ name, entry, want string }{
		{"negative offset", `{"path":"/var/log/a.log","dev":1,"inode":2,"fingerprint":"ab","fingerprintSize":10,"offset":-5}`, "offset -5"},
		{"negative fingerprint size", `{"path":"/var/log/a.log","dev":1,"inode":2,"fingerprint":"ab","fingerprintSize":-1,"offset":5}`, "fingerprintSize -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cp.json")
			doc := `{"version":1,"flows":{"f1":[` + tc.entry + `]}}`
			if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := Open(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "f1") || !strings.Contains(err.Error(), path) {
				t.Fatalf("got %v; want an error naming %q, the flow and the file", err, tc.want)
			}
		})
	}
}
