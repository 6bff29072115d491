package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
)

// target is a parsed -url: where to dial and the request bytes to write.
type target struct {
	addr string // host:port
	req  []byte // full HTTP/1.1 request
}

func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, err
	}
	if u.Scheme != "http" {
		return target{}, fmt.Errorf("only http:// URLs are supported, got %q", raw)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "80")
	}
	return target{addr: host, req: buildRequest(u.Host, u.RequestURI())}, nil
}

// buildRequest returns the raw bytes of a minimal keep-alive GET.
func buildRequest(host, uri string) []byte {
	return []byte("GET " + uri + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: ferry-bench-load\r\nAccept: */*\r\n\r\n")
}

// response is what readResponse extracts; body aliases the caller's buffer.
type response struct {
	status int
	body   []byte
	close  bool // the server asked to close, or the body was delimited by EOF
}

var errMalformed = errors.New("malformed response")

// readResponse parses one HTTP/1.x response from br without allocating in the
// common case (Content-Length bodies that fit in buf). It understands
// Content-Length, chunked transfer coding, Connection: close and bodies
// delimited by EOF. 1xx interim responses are skipped.
func readResponse(br *bufio.Reader, buf []byte) (response, []byte, error) {
	for {
		r, buf, err := readOne(br, buf)
		if err != nil || r.status >= 200 || r.status < 100 {
			return r, buf, err
		}
	}
}

func readOne(br *bufio.Reader, buf []byte) (response, []byte, error) {
	var r response
	line, err := br.ReadSlice('\n')
	if err != nil {
		return r, buf, err
	}
	// "HTTP/1.1 200 OK\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return r, buf, errMalformed
	}
	st, ok := atoi(line[9:12])
	if !ok {
		return r, buf, errMalformed
	}
	r.status = st
	clen, chunked := -1, false
	for {
		line, err = br.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return r, buf, fmt.Errorf("header line too long")
			}
			return r, buf, err
		}
		line = trimCRLF(line)
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return r, buf, errMalformed
		}
		name, val := line[:colon], bytes.TrimSpace(line[colon+1:])
		switch {
		case equalFold(name, "content-length"):
			n, ok := atoi(val)
			if !ok {
				return r, buf, errMalformed
			}
			clen = n
		case equalFold(name, "transfer-encoding"):
			chunked = bytes.Contains(bytes.ToLower(val), []byte("chunked"))
		case equalFold(name, "connection"):
			if bytes.Contains(bytes.ToLower(val), []byte("close")) {
				r.close = true
			}
		}
	}
	if st < 200 || st == 204 || st == 304 {
		return r, buf, nil
	}
	switch {
	case chunked:
		buf = buf[:0]
		for {
			line, err = br.ReadSlice('\n')
			if err != nil {
				return r, buf, err
			}
			line = trimCRLF(line)
			if i := bytes.IndexByte(line, ';'); i >= 0 {
				line = line[:i]
			}
			n, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
			if err != nil {
				return r, buf, errMalformed
			}
			if n == 0 {
				// trailers, then the final CRLF
				for {
					line, err = br.ReadSlice('\n')
					if err != nil {
						return r, buf, err
					}
					if len(trimCRLF(line)) == 0 {
						break
					}
				}
				r.body = buf
				return r, buf, nil
			}
			start := len(buf)
			buf = grow(buf, int(n))
			if _, err := io.ReadFull(br, buf[start:]); err != nil {
				return r, buf, err
			}
			if _, err := br.Discard(2); err != nil { // CRLF after chunk
				return r, buf, err
			}
		}
	case clen >= 0:
		buf = grow(buf[:0], clen)
		if _, err := io.ReadFull(br, buf); err != nil {
			return r, buf, err
		}
		r.body = buf
		return r, buf, nil
	default:
		b, err := io.ReadAll(br)
		r.body, r.close = b, true
		return r, buf, err
	}
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n, 2*(len(b)+n))
	copy(nb, b)
	return nb
}

func trimCRLF(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func atoi(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > 1<<40 {
			return 0, false
		}
	}
	return n, true
}

// equalFold reports whether b equals the lower-case ASCII string s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
