package b64_test

import (
	"fmt"

	"github.com/kinesisgo/kinesis/internal/b64"
)

func ExampleAppendEncode() {
	fmt.Println(string(b64.AppendEncode([]byte(`{"Data":"`), []byte("hello, world"))))
	// Output: {"Data":"aGVsbG8sIHdvcmxk
}
