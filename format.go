package ferry

import (
	"bytes"
	"encoding/json"
	"io"
	"sync"

	"github.com/danielgtaylor/huma/v2"
)

// jsonFormat writes JSON bodies exactly as json.Marshal would, without
// HTML escaping and without the trailing newline of json.Encoder, in a
// single Write: {"item_id":42} is the whole body.
var jsonFormat = huma.Format{
	Marshal: func(w io.Writer, v any) error {
		buf := bufferPool.Get().(*bytes.Buffer)
		buf.Reset()
		defer func() {
			if buf.Cap() <= maxPooledBuffer {
				bufferPool.Put(buf)
			}
		}()
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(v); err != nil {
			return err
		}
		_, err := w.Write(bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}))
		return err
	},
	Unmarshal: json.Unmarshal,
}

// maxPooledBuffer keeps one huge body from pinning its buffer forever.
const maxPooledBuffer = 64 << 10

var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// formats returns the content formats of a new service: JSON only, in a
// map of its own (Huma's DefaultFormats is a shared, mutable global).
func formats() map[string]huma.Format {
	return map[string]huma.Format{"application/json": jsonFormat, "json": jsonFormat}
}
