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
