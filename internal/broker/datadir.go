package broker

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/nats-io/nkeys"
)

// The files Ferry keeps in a data directory besides JetStream's store:
// ferry.lock (held by the process that runs the broker, see lockDir), the
// record below, and the broker's NKey.
const (
	urlFileName  = "broker.url"
	nkeyFileName = "broker.nkey"
)

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
	// NKey reports that the broker admits only the NKey user whose seed
	// is in broker.nkey.
	NKey bool `json:"nkey,omitempty"`
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
		return record{}, errors.New("no server_id")
	}
	return rec, nil
}

// brokerNKey returns the public key of the NKey user whose seed dir keeps
// in broker.nkey, creating the seed (mode 0600) the first time. Called by
// the process holding dir only. A seed file other users can read is
// refused: it admits anyone who has it to every subject and stream.
func brokerNKey(dir string) (string, error) {
	path := filepath.Join(dir, nkeyFileName)
	seed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createNKey(path)
	}
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(path); err != nil {
		return "", err
	} else if perm := fi.Mode().Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return "", fmt.Errorf("%s is readable by other users (mode %o): it admits anyone who has it to the broker; chmod 600 it", path, perm)
	}
	user, err := nkeys.FromSeed(bytes.TrimSpace(seed))
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	defer user.Wipe()
	return user.PublicKey()
}

// createNKey writes a new NKey user seed to path, which must not exist,
// and returns its public key.
func createNKey(path string) (string, error) {
	user, err := nkeys.CreateUser() // crypto/rand
	if err != nil {
		return "", err
	}
	defer user.Wipe()
	seed, err := user.Seed()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", err
	}
	_, err = f.Write(append(seed, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return "", err
	}
	return user.PublicKey()
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

// Published returns what the process holding dir published in broker.url:
// its broker's URL ("" when it is reachable in process only) and, when
// that broker admits only the NKey user whose seed dir keeps, the seed
// file's path. No record is an error wrapping fs.ErrNotExist.
func Published(dir string) (url, nkeyFile string, err error) {
	data, err := os.ReadFile(filepath.Join(dir, urlFileName))
	if err != nil {
		return "", "", err
	}
	rec, err := parseRecord(data)
	if err != nil {
		return "", "", fmt.Errorf("%s: %w", filepath.Join(dir, urlFileName), err)
	}
	if rec.NKey {
		nkeyFile = filepath.Join(dir, nkeyFileName)
	}
	return rec.URL, nkeyFile, nil
}
