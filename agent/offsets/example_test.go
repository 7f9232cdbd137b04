package offsets_test

import (
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
