package natscluster

import (
	"bytes"
	"io"
	"sync"
)

// tailSize is how much of a node's latest output is kept for the error
// that reports the node exited on its own.
const tailSize = 1024

// output takes one node's output: it keeps the tail and, when the cluster
// has a log writer, copies each line there prefixed with the node's name.
type output struct {
	prefix string
	logs   *lockedWriter // nil: output is only kept

	mu   sync.Mutex
	tail []byte
	line []byte // the unfinished line, not yet copied to logs
}

func (o *output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.tail = append(o.tail, p...)
	if len(o.tail) > tailSize {
		o.tail = append(o.tail[:0], o.tail[len(o.tail)-tailSize:]...)
	}
	if o.logs == nil {
		return len(p), nil
	}
	o.line = append(o.line, p...)
	for {
		i := bytes.IndexByte(o.line, '\n')
		if i < 0 {
			break
		}
		o.logs.write(o.prefix, o.line[:i+1])
		o.line = o.line[i+1:]
	}
	o.line = append([]byte(nil), o.line...) // drop what was copied
	return len(p), nil
}

// flush copies an unfinished last line to the logs.
func (o *output) flush() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.logs != nil && len(o.line) > 0 {
		o.logs.write(o.prefix, append(o.line, '\n'))
		o.line = nil
	}
}

// lastLines returns the tail of the output kept, from its first whole line.
func (o *output) lastLines() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	t := o.tail
	if len(t) == tailSize {
		if i := bytes.IndexByte(t, '\n'); i >= 0 {
			t = t[i+1:]
		}
	}
	return string(bytes.TrimSpace(t))
}

// lockedWriter serialises the writes of every node to one writer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) write(prefix string, line []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, prefix)
	_, _ = l.w.Write(line)
}
