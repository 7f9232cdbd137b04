package aggregation

import (
	"bytes"
	"crypto/md5"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/kinesisgo/kinesis/internal/md5lanes"
)

// processCPU returns the CPU time (user plus system) the process has used:
// with the time elapsed, a benchmark's records per CPU-second, which the
// garbage collector's work on other cores counts in and other processes
// on the machine do not.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// container50K returns a container of about 50 KB holding 100-byte user
// records with distinct partition keys, and the number of records in it.
func container50K(b *testing.B) ([]byte, int) {
	var e Encoder
	data := make([]byte, 100)
	for i := 0; ; i++ {
		r := Record{PartitionKey: fmt.Sprintf("partition-key-%08d", i), Data: data}
		if e.SizeWith(r) > 51200 {
			break
		}
		e.Add(r)
	}
	return e.Encode(), e.Len()
}

// BenchmarkDecode reports user records/s decoded from 50 KB containers of
// 100-byte records.
func BenchmarkDecode(b *testing.B) {
	c, n := container50K(b)
	b.SetBytes(int64(len(c)))
	b.ReportAllocs()
	var recs []UserRecord
	cpu := processCPU(b)
	for b.Loop() {
		var ok bool
		recs, ok = DecodeAppend(recs[:0], c)
		if !ok || len(recs) != n {
			b.Fatal("decode failed")
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/(processCPU(b)-cpu).Seconds(), "records/cpu-s")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkDecodeMany reports user records/s decoded by DecodeAppendMany
// from eight of the same containers at a time.
func BenchmarkDecodeMany(b *testing.B) {
	c, n := container50K(b)
	datas := make([][]byte, 8)
	for i := range datas {
		datas[i] = bytes.Clone(c)
	}
	counts := make([]int, len(datas))
	b.SetBytes(int64(len(datas) * len(c)))
	b.ReportAllocs()
	var recs []UserRecord
	cpu := processCPU(b)
	for b.Loop() {
		recs = DecodeAppendMany(recs[:0], datas, counts)
		if len(recs) != len(datas)*n {
			b.Fatal("decode failed")
		}
	}
	b.ReportMetric(float64(len(datas)*n)*float64(b.N)/(processCPU(b)-cpu).Seconds(), "records/cpu-s")
	b.ReportMetric(float64(len(datas)*n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkEncode reports user records/s encoded into 50 KB containers of
// 100-byte records.
func BenchmarkEncode(b *testing.B) {
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("partition-key-%08d", i)
	}
	data := make([]byte, 100)
	var e Encoder
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r := Record{PartitionKey: keys[i%len(keys)], Data: data}
		i++
		if e.SizeWith(r) > 51200 {
			buf = e.AppendTo(buf[:0])
			e.Reset()
		}
		e.Add(r)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkContainerMD5 reports the user records/s at which the MD5 digest
// of the same containers alone can be checked: the ceiling of a decoder
// that verifies it, on the machine at hand, with the digest Decode uses
// (md5lanes.Sum) and with crypto/md5.
func BenchmarkContainerMD5(b *testing.B) {
	c, n := container50K(b)
	msg := c[len(magic) : len(c)-md5.Size]
	for _, bc := range []struct {
		name string
		sum  func([]byte) [md5.Size]byte
	}{{"md5lanes", md5lanes.Sum}, {"crypto-md5", md5.Sum}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(c)))
			cpu := processCPU(b)
			for b.Loop() {
				_ = bc.sum(msg)
			}
			b.ReportMetric(float64(n)*float64(b.N)/(processCPU(b)-cpu).Seconds(), "records/cpu-s")
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
