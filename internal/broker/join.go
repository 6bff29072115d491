package broker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// ownerStartWait bounds how long a process waits for the holder of its
// data directory to publish its broker; the holder gives its own server
// 10s to become ready once JetStream has recovered its store.
const ownerStartWait = 10 * time.Second

// ownerPoll is how often a waiting process looks at the data directory.
const ownerPoll = 50 * time.Millisecond

// takeOrJoin runs the broker on o.DataDir (an absolute path) if no other
// process holds it, or else joins the broker of the process that does. A
// holder that has not published its record yet is waited for; so is one
// whose record is stale (a new holder replaces it), until ownerStartWait
// or ctx ends.
func takeOrJoin(ctx context.Context, o Options) (*Broker, error) {
	dir := o.DataDir
	deadline := time.Now().Add(ownerStartWait)
	var tried []byte // the record last tried and found stale
	var stale error  // why it was stale
	waiting := false
	for {
		lock, err := lockDir(dir)
		if err == nil {
			return own(ctx, o, lock)
		}
		if !errors.Is(err, errLocked) {
			return nil, fmt.Errorf("ferry: embedded broker: lock %s: %w", dir, err)
		}
		raw, err := os.ReadFile(filepath.Join(dir, urlFileName))
		switch {
		case err == nil && !bytes.Equal(raw, tried):
			b, retry, err := join(ctx, o, raw)
			if !retry {
				return b, err
			}
			tried, stale = raw, err
		case err != nil && !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("ferry: embedded broker: %w", err)
		}
		if time.Now().After(deadline) {
			if stale != nil {
				return nil, stale
			}
			return nil, fmt.Errorf("ferry: embedded broker: data directory %s is held by another process that has not published its broker after %s "+
				"(a large store can take longer to recover: try again); stop that process if it is stuck, or give this one its own FERRY_DATA_DIR",
				dir, ownerStartWait)
		}
		if !waiting {
			waiting = true
			o.Logger.Info("ferry: embedded broker: waiting for the process holding the data directory to publish its broker",
				slog.String("data_dir", dir))
		}
		t := time.NewTimer(ownerPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			if stale != nil {
				return nil, stale
			}
			return nil, fmt.Errorf("ferry: embedded broker: waiting for the process holding %s to publish its broker: %w", dir, ctx.Err())
		case <-t.C:
		}
	}
}

// own runs the broker on the data directory this process has just locked,
// first removing the record a previous holder may have left (one that was
// killed cannot remove its own).
func own(ctx context.Context, o Options, lock *os.File) (*Broker, error) {
	if err := os.Remove(filepath.Join(o.DataDir, urlFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		_ = unlockDir(lock)
		return nil, fmt.Errorf("ferry: embedded broker: remove the previous holder's record: %w", err)
	}
	b, err := startServer(ctx, o, lock)
	if err != nil {
		_ = unlockDir(lock)
		return nil, err
	}
	return b, nil
}

// join connects to the broker that raw, the holder's record, describes.
// retry reports a record that is not the holder's (malformed, or naming
// another server than the one at its URL): a new holder replaces it, so
// the caller waits for it to change.
func join(ctx context.Context, o Options, raw []byte) (b *Broker, retry bool, err error) {
	dir := o.DataDir
	path := filepath.Join(dir, urlFileName)
	rec, err := parseRecord(raw)
	if err != nil {
		return nil, true, fmt.Errorf("ferry: embedded broker: %s does not describe a running broker (written by an older Ferry?); "+
			"stop the process holding %s, or remove the file: %w", path, dir, err)
	}
	if rec.URL == "" {
		return nil, false, fmt.Errorf("ferry: embedded broker: data directory %s is in use by another process whose broker does not listen; "+
			"start that process with FERRY_NATS_LISTEN (flag -nats-listen) so others can join it, or give this one its own FERRY_DATA_DIR", dir)
	}
	jo := o
	jo.CredsFile, jo.NKeyFile, jo.TLSCA, jo.TLSCert, jo.TLSKey = "", "", "", "", "" // settings of an external server
	if rec.NKey {
		jo.NKeyFile = filepath.Join(dir, nkeyFileName)
		if _, err := os.ReadFile(jo.NKeyFile); err != nil {
			return nil, false, fmt.Errorf("ferry: embedded broker: the broker of the process that holds %s admits only the key in %s: %w",
				dir, jo.NKeyFile, err)
		}
	}
	nc, err := connect(ctx, rec.URL, jo)
	if err != nil {
		return nil, false, fmt.Errorf("ferry: embedded broker: joining the broker of the process that holds %s: %w", dir, err)
	}
	if id := nc.ConnectedServerId(); id != rec.ServerID {
		nc.Close()
		return nil, true, fmt.Errorf("ferry: embedded broker: %s names server %s at %s, but the server there is %s: "+
			"the file is stale (left by a process that was killed?) or another server took the port; stop the process holding %s, or remove the file",
			path, rec.ServerID, redact(rec.URL), id, dir)
	}
	o.Logger.Info("ferry: joined the embedded broker of the process holding the data directory",
		slog.String("url", redact(rec.URL)), slog.String("data_dir", dir))
	return &Broker{nc: nc, url: rec.URL, joined: true, logger: o.Logger}, false, nil
}
