package process_test

import (
	"errors"
	"fmt"

	"github.com/kinesisgo/kinesis/agent/config"
	"github.com/kinesisgo/kinesis/agent/process"
)

func Example() {
	c, err := process.New([]config.Option{{Name: config.OptLogToJSON, LogFormat: config.FormatCommonApache}})
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := c.Apply([]byte(`192.0.2.7 - alice [10/Oct/2024:13:55:36 +0000] "GET /index.html HTTP/1.1" 200 512` + "\n"))
	fmt.Print(string(out))
	fmt.Println(err)
	// Output:
	// {"host":"192.0.2.7","ident":null,"authuser":"alice","datetime":"10/Oct/2024:13:55:36 +0000","request":"GET /index.html HTTP/1.1","response":"200","bytes":"512"}
	// <nil>
}

// Invalid UTF-8 cannot be written into JSON as it is: it is replaced by
// U+FFFD, and the record is reported through OnInvalidUTF8 (a metric's Inc,
// say).
func ExampleChain_invalidUTF8() {
	c, err := process.New([]config.Option{{Name: config.OptCSVToJSON, CustomFieldNames: []string{"id", "city"}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	replaced := 0
	c.OnInvalidUTF8 = func() { replaced++ }
	out, _ := c.Apply([]byte("7,K\xf6ln\n")) // Latin-1, not UTF-8
	fmt.Print(string(out))
	fmt.Println(replaced)
	// Output:
	// {"id":"7","city":"K\ufffdln"}
	// 1
}

func ExampleNew_delimiter() {
	_, err := process.New([]config.Option{{Name: config.OptCSVToJSON, CustomFieldNames: []string{"a"}, Delimiter: "\""}})
	fmt.Println(errors.Is(err, process.ErrDelimiter))
	fmt.Println(err)
	// Output:
	// true
	// process: option 0: unusable CSVTOJSON delimiter "\"": CSV fields cannot be separated by a quote, a line break, NUL or U+FFFD
}
