package tail_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/kinesisgo/kinesis/agent/tail"
)

func Example() {
	dir, _ := os.MkdirTemp("", "tail")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "app.log"), []byte("hello\n"), 0o644)

	t, err := tail.New(tail.Config{Pattern: filepath.Join(dir, "*.log")})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan tail.Event)
	done := make(chan error)
	go func() { done <- t.Run(ctx, events) }()
	for ev := range events {
		fmt.Printf("%v %s at %d: %q\n", ev.Kind, filepath.Base(ev.Path), ev.Offset, ev.Data)
		if ev.Kind == tail.Data {
			break
		}
	}
	cancel()
	<-done
	// Output:
	// open app.log at 0: ""
	// data app.log at 0: "hello\n"
}

// A symbolic link in the directory to a file elsewhere is not followed
// unless FollowSymlinks is set.
func ExampleConfig_followSymlinks() {
	dir, _ := os.MkdirTemp("", "tail")
	defer os.RemoveAll(dir)
	elsewhere, _ := os.MkdirTemp("", "secret")
	defer os.RemoveAll(elsewhere)
	_ = os.WriteFile(filepath.Join(elsewhere, "shadow"), []byte("root:hash\n"), 0o600)
	_ = os.Symlink(filepath.Join(elsewhere, "shadow"), filepath.Join(dir, "shadow.log"))
	_ = os.WriteFile(filepath.Join(dir, "app.log"), []byte("hello\n"), 0o644)

	refused := 0
	t, err := tail.New(tail.Config{Pattern: filepath.Join(dir, "*.log"), OnRefused: func() { refused++ }})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan tail.Event)
	done := make(chan error)
	go func() { done <- t.Run(ctx, events) }()
	for ev := range events {
		if ev.Kind == tail.Data {
			fmt.Printf("%s: %q\n", filepath.Base(ev.Path), ev.Data)
			break
		}
	}
	cancel()
	<-done
	fmt.Println("refused:", refused)
	// Output:
	// app.log: "hello\n"
	// refused: 1
}
