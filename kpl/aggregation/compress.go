package aggregation

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression names how a container is compressed.
type Compression uint8

// Compression algorithms. Only None is readable by AWS's KPL-aware consumers;
// the others are read by Decode (and so by this project's consumer).
const (
	None Compression = iota
	Gzip
	Zstd
)

// String returns "none", "gzip" or "zstd".
func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", uint8(c))
}

// ParseCompression reads "none" (or ""), "gzip" or "zstd".
func ParseCompression(s string) (Compression, error) {
	switch strings.ToLower(s) {
	case "", "none":
		return None, nil
	case "gzip":
		return Gzip, nil
	case "zstd":
		return Zstd, nil
	}
	return None, fmt.Errorf("aggregation: unknown compression %q (want none, gzip or zstd)", s)
}

// compressedMagic starts a compressed container. It differs from the
// container prefix in its last byte, so no KPL-aware reader takes a
// compressed container for an uncompressed one (they see a plain record).
//
// A compressed container is laid out as
//
//	F3 89 9A C3 | algorithm (1 = gzip, 2 = zstd) | compressed bytes of a whole container
//
// The inner container keeps its own prefix and MD5 digest, so a plain record
// that happens to start with these five bytes is still recognised as plain:
// Decode accepts it only if it decompresses into a valid container.
var compressedMagic = [4]byte{0xF3, 0x89, 0x9A, 0xC3}

// MaxDecompressedSize bounds the size Decode decompresses a compressed
// container to; larger ones are treated as plain records. It is above the
// largest Kinesis record (10 MiB), the cap on an uncompressed container.
const MaxDecompressedSize = 16 << 20

// MaxExpansionRatio bounds how much larger than its compressed bytes a
// compressed container may decompress to; one that would expand more is
// treated as a plain record (a decompression bomb: a 1 MiB record of
// zeros would otherwise claim 16 MiB for each of the 10,000 records a
// GetRecords call may return). Containers of real user records, even
// repetitive log lines, compress far less.
const MaxExpansionRatio = 100

// IsCompressed reports whether data starts like a compressed container.
// It does not check that it decompresses; Decode does.
func IsCompressed(data []byte) bool { return bytes.HasPrefix(data, compressedMagic[:]) }

// Compress appends to dst the container compressed with c and returns the
// extended slice. With None it appends container unchanged. Compress does not
// check that container is a valid container; Decode will.
func Compress(dst, container []byte, c Compression) ([]byte, error) {
	switch c {
	case None:
		return append(dst, container...), nil
	case Gzip:
		dst = append(dst, compressedMagic[:]...)
		dst = append(dst, byte(Gzip))
		buf := bytes.NewBuffer(dst)
		w := gzipWriters.Get().(*gzip.Writer)
		defer gzipWriters.Put(w)
		w.Reset(buf)
		if _, err := w.Write(container); err != nil {
			return nil, fmt.Errorf("aggregation: gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("aggregation: gzip: %w", err)
		}
		return buf.Bytes(), nil
	case Zstd:
		enc, err := zstdEncoder()
		if err != nil {
			return nil, fmt.Errorf("aggregation: zstd: %w", err)
		}
		dst = append(dst, compressedMagic[:]...)
		dst = append(dst, byte(Zstd))
		return enc.EncodeAll(container, dst), nil
	}
	return nil, fmt.Errorf("aggregation: unknown compression %v", c)
}

// decompress returns the inner container of a compressed container, or
// ok=false when data does not decompress within MaxDecompressedSize and
// MaxExpansionRatio times its size.
func decompress(data []byte) (inner []byte, ok bool) {
	if len(data) < len(compressedMagic)+1 {
		return nil, false
	}
	body := data[len(compressedMagic)+1:]
	limit := min(MaxDecompressedSize, MaxExpansionRatio*len(data))
	switch Compression(data[len(compressedMagic)]) {
	case Gzip:
		r, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if r == nil {
			r, err = gzip.NewReader(bytes.NewReader(body))
		} else {
			err = r.Reset(bytes.NewReader(body))
		}
		if err != nil {
			return nil, false
		}
		defer gzipReaders.Put(r)
		r.Multistream(false)
		out, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
		if err != nil || len(out) > limit {
			return nil, false
		}
		return out, true
	case Zstd:
		var h zstd.Header
		if err := h.Decode(body); err != nil || h.HasFCS && h.FrameContentSize > uint64(limit) {
			return nil, false // refused before decoding: the frame says how large it is
		}
		dec, err := zstdDecoder()
		if err != nil {
			return nil, false
		}
		out, err := dec.DecodeAll(body, nil)
		if err != nil || len(out) > limit {
			return nil, false
		}
		return out, true
	}
	return nil, false
}

var (
	gzipWriters = sync.Pool{New: func() any { return gzip.NewWriter(nil) }}
	gzipReaders sync.Pool

	// The zstd encoder and decoder are safe for concurrent use of
	// EncodeAll and DecodeAll, start no goroutines of their own in that
	// mode, and are built on first use.
	zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
		return zstd.NewWriter(nil, zstd.WithLowerEncoderMem(true))
	})
	zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderMaxMemory(MaxDecompressedSize),
			zstd.WithDecoderMaxWindow(MaxDecompressedSize))
	})
)
