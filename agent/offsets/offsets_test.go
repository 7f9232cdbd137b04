package offsets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSaveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "checkpoints.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	e := []Entry{{Path: "/var/log/a.log", Dev: 1, Inode: 2, Fingerprint: "ab", FingerprintSize: 10, Offset: 42}}
	s.Set("flow", e)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := s2.Get("flow"); len(got) != 1 || got[0] != e[0] {
		t.Fatalf("got %+v", got)
	}
	s2.Set("flow", nil)
	if err := s2.Save(); err != nil {
		t.Fatal(err)
	}
	s3, _ := Open(path)
	if !s3.Has("flow") || len(s3.Get("flow")) != 0 {
		t.Fatalf("a flow saved with no entries should stay known: %v", s3.Flows())
	}
	s3.Delete("flow")
	if err := s3.Save(); err != nil {
		t.Fatal(err)
	}
	s4, _ := Open(path)
	if s4.Has("flow") || len(s4.Flows()) != 0 {
		t.Fatalf("flows %v after Delete", s4.Flows())
	}
}

func TestCorruptFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path); err == nil {
		t.Fatal("want error")
	}
}

func TestSaveWithoutChangesWritesNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cp.json")
	s, _ := Open(path)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("an unchanged store should not be written")
	}
}

func TestWritable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	path := filepath.Join(dir, "cp.json")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Writable(); err != nil {
		t.Fatalf("Writable in a writable directory: %v", err)
	}
	if again, err := Open(path); err != nil || len(again.Flows()) != 0 {
		t.Fatalf("the file Writable created: %v, flows %v", err, again.Flows())
	}
	// The directory replaced by a file: nothing can be written under it.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.Writable(); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Writable = %v, want an error naming %s", err, path)
	}
	if err := (&Store{}).Writable(); err != nil {
		t.Errorf("zero Store: Writable = %v", err)
	}
}

func TestWritableReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root writes into read-only directories; cmd/kinesis-agent tests this as another user")
	}
	dir := t.TempDir()
	s, err := Open(filepath.Join(dir, "cp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o700)
	if err := s.Writable(); err == nil {
		t.Fatal("Writable = nil in a read-only directory")
	}
}
