package process_test

import (
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
