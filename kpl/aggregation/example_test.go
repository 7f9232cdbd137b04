package aggregation_test

import (
	"fmt"

	"github.com/kinesisgo/kinesis/kpl/aggregation"
)

func Example() {
	var e aggregation.Encoder
	e.Add(aggregation.Record{PartitionKey: "user-1", Data: []byte("first")})
	e.Add(aggregation.Record{PartitionKey: "user-2", Data: []byte("second")})
	e.Add(aggregation.Record{PartitionKey: "user-1", Data: []byte("third")})
	container := e.Encode()
	fmt.Println(len(container) == e.Size())

	records, ok := aggregation.Decode(container)
	fmt.Println(ok)
	for _, r := range records {
		fmt.Println(r.SubSequenceNumber, r.PartitionKey, string(r.Data))
	}

	// Anything that is not a container is one plain record.
	_, ok = aggregation.Decode([]byte("a plain record"))
	fmt.Println(ok)
	// Output:
	// true
	// true
	// 0 user-1 first
	// 1 user-2 second
	// 2 user-1 third
	// false
}

func ExampleCompress() {
	var e aggregation.Encoder
	for i := 0; i < 100; i++ {
		e.Add(aggregation.Record{PartitionKey: fmt.Sprint("key-", i%10), Data: []byte("the same payload again and again")})
	}
	plain := e.Encode()
	compressed, err := aggregation.Compress(nil, plain, aggregation.Zstd)
	if err != nil {
		panic(err)
	}
	records, ok := aggregation.Decode(compressed) // decompressed transparently
	fmt.Println(ok, len(records), len(compressed) < len(plain))
	// Output: true 100 true
}

func ExampleDecodeAppendMany() {
	var e aggregation.Encoder
	e.Add(aggregation.Record{PartitionKey: "user-1", Data: []byte("first")})
	e.Add(aggregation.Record{PartitionKey: "user-2", Data: []byte("second")})
	a := e.Encode()
	e.Reset()
	e.Add(aggregation.Record{PartitionKey: "user-3", Data: []byte("third")})
	b := e.Encode()

	// A record that is not a container appends nothing: -1.
	datas := [][]byte{a, []byte("a plain record"), b}
	counts := make([]int, len(datas))
	records := aggregation.DecodeAppendMany(nil, datas, counts)
	fmt.Println(counts)
	for _, r := range records {
		fmt.Println(r.SubSequenceNumber, r.PartitionKey, string(r.Data))
	}
	// Output:
	// [2 -1 1]
	// 0 user-1 first
	// 1 user-2 second
	// 0 user-3 third
}
