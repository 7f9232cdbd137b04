package offsets_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kinesisgo/kinesis/agent/offsets"
)

func Example() {
	dir, _ := os.MkdirTemp("", "offsets")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "checkpoints.json")

	s, _ := offsets.Open(path)
	s.Set("app:/var/log/app.log", []offsets.Entry{{Path: "/var/log/app.log", Dev: 2049, Inode: 131, Offset: 4096}})
	if err := s.Save(); err != nil { // temporary file, fsync, rename
		fmt.Println(err)
	}
	again, _ := offsets.Open(path)
	fmt.Println(again.Get("app:/var/log/app.log")[0].Offset)
	// Output: 4096
}

func ExampleOpen_corrupt() {
	dir, _ := os.MkdirTemp("", "offsets")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "checkpoints.json")
	_ = os.WriteFile(path, []byte(`{"version":1,"flows":{"app":[{"path":"/var/log/app.log","offset":-1}]}}`), 0o600)

	_, err := offsets.Open(path)
	fmt.Println(errors.Is(err, offsets.ErrCorrupt))
	// Output: true
}

// A store whose file cannot be replaced (here its directory was removed and
// a plain file put in its place) is found out before anything is sent.
func ExampleStore_Writable() {
	dir, _ := os.MkdirTemp("", "offsets")
	defer os.RemoveAll(dir)
	state := filepath.Join(dir, "state")
	s, _ := offsets.Open(filepath.Join(state, "checkpoints.json"))
	fmt.Println(s.Writable())

	_ = os.RemoveAll(state)
	_ = os.WriteFile(state, nil, 0o600)
	fmt.Println(s.Writable() != nil)
	// Output:
	// <nil>
	// true
}
