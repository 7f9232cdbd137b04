package proxy

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkSinkPutRecords measures the proxy's own cost per PutRecords call
// of 500 records of 100 B in sink mode with limits, through its HTTP
// listener (the upstream, asked only for ListShards, is a stand-in).
func BenchmarkSinkPutRecords(b *testing.B) {
	p := startFake(b, Config{Sink: true, Limits: Limits{WriteRecordsPerSecond: 1 << 30, WriteBytesPerSecond: 1 << 40}})
	var sb strings.Builder
	sb.WriteString(`{"StreamName":"s","Records":[`)
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, 100))
	for i := range 500 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"Data":%q,"PartitionKey":"key-%d"}`, data, i)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	client := &http.Client{}
	b.SetBytes(500 * 100)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, p.URL(), bytes.NewReader(body))
			req.Header.Set("X-Amz-Target", kinesisTargetPrefix+"PutRecords")
			req.Header.Set("Content-Type", "application/x-amz-json-1.1")
			req.Header.Set("Authorization", signed)
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || bytes.Contains(buf.Bytes(), []byte("ErrorCode")) {
				b.Errorf("HTTP %d %.200s", resp.StatusCode, buf.Bytes())
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)*500/b.Elapsed().Seconds(), "records/s")
}
