package proxy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// response is a complete response, written by writeResponse.
type response struct {
	status int
	header http.Header
	body   []byte
}

func errorResponse(s service, e awsError) response {
	rec := newRecorder()
	writeError(rec, s, e)
	return rec.response()
}

func jsonResponse(s service, body []byte) response {
	rec := newRecorder()
	writeJSON(rec, s, body)
	return rec.response()
}

// hopHeaders are not forwarded in either direction.
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length",
}

// upstreamRequest builds the request to the upstream base URL with the
// caller's headers (including its signing headers) and body.
func upstreamRequest(ctx context.Context, base *url.URL, in http.Header, body []byte) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range in {
		req.Header[k] = append([]string(nil), vs...)
	}
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	// Bodies pass through as the upstream sends them; ask for them
	// uncompressed so that the proxy can read the ones it inspects.
	req.Header.Set("Accept-Encoding", "identity")
	req.ContentLength = int64(len(body))
	return req, nil
}

// forward sends body to the service's upstream with the caller's headers and
// returns the whole response.
func (p *Proxy) forward(ctx context.Context, s service, in http.Header, body []byte) (response, error) {
	base := p.upstream[s]
	req, err := upstreamRequest(ctx, base, in, body)
	if err != nil {
		return response{}, err
	}
	p.stats.forwarded.Add(1)
	resp, err := p.client.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("forward to %s: %w", base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, fmt.Errorf("read response from %s: %w", base, err)
	}
	h := resp.Header.Clone()
	for _, k := range hopHeaders {
		h.Del(k)
	}
	return response{status: resp.StatusCode, header: h, body: b}, nil
}

// forwardStream copies a streaming response (SubscribeToShard's event
// stream) to w as it arrives.
func (p *Proxy) forwardStream(w http.ResponseWriter, r *http.Request, s service, body []byte) {
	base := p.upstream[s]
	req, err := upstreamRequest(r.Context(), base, r.Header, body)
	if err != nil {
		writeError(w, s, upstreamFailure(err))
		return
	}
	p.stats.forwarded.Add(1)
	resp, err := p.client.Do(req)
	if err != nil {
		writeError(w, s, upstreamFailure(err))
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	for _, k := range hopHeaders {
		w.Header().Del(k)
	}
	w.WriteHeader(resp.StatusCode)
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return
			}
			_ = rc.Flush()
		}
		if err != nil {
			return
		}
	}
}

func upstreamFailure(err error) awsError {
	return awsError{status: http.StatusBadGateway, code: codeInternalFailure, message: "proxy: upstream: " + err.Error()}
}

// writeResponse writes resp to w. With cut, it sends the status line, the
// headers and half the body, then closes the connection.
func writeResponse(w http.ResponseWriter, resp response, cut bool) {
	if cut {
		if conn, bufrw, err := http.NewResponseController(w).Hijack(); err == nil {
			writeCut(bufrw.Writer, resp)
			_ = conn.Close()
			return
		}
		// Not hijackable (HTTP/2): send the response whole.
	}
	for k, vs := range resp.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
}

func writeCut(bw *bufio.Writer, resp response) {
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", resp.status, http.StatusText(resp.status))
	h := resp.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	h.Set("Connection", "close")
	_ = h.Write(bw)
	_, _ = bw.WriteString("\r\n")
	_, _ = bw.Write(resp.body[:len(resp.body)/2])
	_ = bw.Flush()
}

// recorder is a minimal http.ResponseWriter that keeps what is written.
type recorder struct {
	h      http.Header
	status int
	buf    bytes.Buffer
}

func newRecorder() *recorder { return &recorder{h: http.Header{}, status: http.StatusOK} }

func (r *recorder) Header() http.Header         { return r.h }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.buf.Write(b) }
func (r *recorder) response() response {
	return response{status: r.status, header: r.h, body: r.buf.Bytes()}
}
