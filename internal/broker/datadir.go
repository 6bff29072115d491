package broker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// The files Ferry keeps in a data directory besides JetStream's store:
// ferry.lock (held by the process that runs the broker, see lockDir) and
// the record below.
const urlFileName = "broker.url"

// record is what the process holding a data directory publishes in
// broker.url once its broker is ready, so that other processes on the same
// directory can join it and make sure they reached it.
type record struct {
	// URL is the broker's client URL; "" when it is reachable in process
	// only.
	URL string `json:"url"`
	// ServerID is the nats-server's ID, which a joiner compares with the
	// one of the server it reached.
	ServerID string `json:"server_id"`
}

// writeRecord publishes rec in dir, replacing the file in one step so a
// reader never sees half of it.
func writeRecord(dir string, rec record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, urlFileName), append(data, '\n'), 0o640)
}

// parseRecord decodes the content of broker.url.
func parseRecord(data []byte) (record, error) {
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return record{}, err
	}
	if rec.ServerID == "" {
		return record{}, fmt.Errorf("no server_id")
	}
	return rec, nil
}

// writeFileAtomic writes data to path through a temporary file renamed
// over it.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
