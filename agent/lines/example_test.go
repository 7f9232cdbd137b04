package lines_test

import (
	"fmt"
	"regexp"

	"github.com/kinesisgo/kinesis/agent/lines"
)

func Example() {
	s := lines.New(lines.Config{
		SkipHeaderLines: 1,
		MultiLineStart:  regexp.MustCompile(`^\d{4}-`),
	}, 0)
	print := func(r lines.Record) { fmt.Printf("%q ends at %d\n", r.Data, r.End) }
	s.Write([]byte("header\n2024-05-01 boom\n  at main()\n2024-05-01 ok\n"), print)
	s.Flush(print) // the last record is complete once the buffer age passes
	// Output:
	// "2024-05-01 boom\n  at main()\n" ends at 35
	// "2024-05-01 ok\n" ends at 49
}
