package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/kinesisgo/kinesis/agent"
	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/offsets"
)

// printSink stands in for a kpl producer: it prints each record and
// acknowledges it.
type printSink struct {
	mu   sync.Mutex
	seen chan struct{}
}

func (s *printSink) Put(_ context.Context, r agent.Record, done func(error)) error {
	s.mu.Lock()
	fmt.Printf("%s", r.Data)
	s.mu.Unlock()
	done(nil)
	s.seen <- struct{}{}
	return nil
}
func (s *printSink) Flush(context.Context) error { return nil }
func (s *printSink) Close(context.Context) error { return nil }

func Example() {
	dir, _ := os.MkdirTemp("", "agent-example")
	defer os.RemoveAll(dir)
	logFile := filepath.Join(dir, "app.log")
	_ = os.WriteFile(logFile, []byte("ts,level,msg\n1,INFO,started\n2,WARN,disk 91% full\n"), 0o644)

	// In the daemon the flows come from agent.json (config.Load) and the
	// sink is agent.KPLSink(kpl.New(agent.ProducerConfig(flow, ...))).
	f, err := config.Parse([]byte(`{"flows": [{
		"filePattern": "` + filepath.Join(dir, "*.log") + `",
		"kinesisStream": "app",
		"initialPosition": "START_OF_FILE",
		"skipHeaderLines": 1,
		"dataProcessingOptions": [{"optionName": "CSVTOJSON", "customFieldNames": ["ts", "level", "msg"]}]
	}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	store, _ := offsets.Open(filepath.Join(dir, "state", "checkpoints.json"))
	sink := &printSink{seen: make(chan struct{}, 10)}
	a, err := agent.New(agent.Config{
		Flows:   f.Flows,
		Offsets: store,
		NewSink: func(config.Flow) (agent.Sink, error) { return sink, nil },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	for range 2 {
		select {
		case <-sink.seen:
		case <-time.After(10 * time.Second):
			fmt.Println("timed out")
		}
	}
	cancel()
	if err := <-done; err != nil {
		fmt.Println(err)
	}
	// Output:
	// {"ts":"1","level":"INFO","msg":"started"}
	// {"ts":"2","level":"WARN","msg":"disk 91% full"}
}
