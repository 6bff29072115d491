// Package provision creates and checks the JetStream streams and
// key-value buckets Ferry uses, by who owns them: the owner of a stream
// (the service that publishes a topic, the service whose state a bucket
// holds) creates it or updates it to its declaration; a user of it (a
// subscriber) creates it only when it does not exist yet, and otherwise
// checks it and warns when it differs from what the user was built
// against, without changing it. In ModeNone nothing is created or
// changed: what is missing is an error, for deployments whose NATS
// accounts allow no stream administration.
package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Mode says what a process may do to streams and buckets.
type Mode string

// The provisioning modes.
const (
	// ModeOwner: owners create and update, users create what is missing
	// and check the rest.
	ModeOwner Mode = "owner"
	// ModeNone: nothing is created or updated; everything is checked.
	ModeNone Mode = "none"
)

// Role is how a process relates to a stream or bucket.
type Role int

// The roles.
const (
	// Owner declares the stream: it publishes the topic, or the bucket
	// holds its state.
	Owner Role = iota
	// User consumes the stream or bucket someone else owns.
	User
)

// jsErrStreamInvalidConfig is the JetStream error for a change a stream
// cannot take in place (storage, retention to or from work queue, …).
const jsErrStreamInvalidConfig = 10052

// Stream makes sure the stream cfg describes exists, as the mode and role
// allow; see the package doc. A change JetStream cannot apply in place is
// not forced: the stream keeps its configuration and the log says so.
func Stream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, mode Mode, role Role, logger *slog.Logger) error {
	if mode == ModeOwner && role == Owner {
		_, err := js.CreateOrUpdateStream(ctx, cfg)
		var apiErr *jetstream.APIError
		switch {
		case err == nil:
			return nil
		case errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrStreamInvalidConfig:
			logger.Warn("ferry: stream configuration changed in a way JetStream cannot apply in place; the stream keeps its old configuration until migrated (docs/events.md, \"Migrating a stream\")",
				slog.String("stream", cfg.Name), slog.String("reason", apiErr.Description))
			return nil
		}
		return fmt.Errorf("ferry: stream %s: %w", cfg.Name, err)
	}
	s, err := js.Stream(ctx, cfg.Name)
	switch {
	case err == nil:
		if drift := Drift(s.CachedInfo().Config, cfg); drift != "" {
			logger.Warn("ferry: stream differs from this service's declaration; left as it is (its owner provisions it)",
				slog.String("stream", cfg.Name), slog.String("differs", drift))
		}
		return nil
	case !errors.Is(err, jetstream.ErrStreamNotFound):
		return fmt.Errorf("ferry: stream %s: %w", cfg.Name, err)
	case mode == ModeNone:
		return fmt.Errorf("ferry: stream %s does not exist and provisioning is off (FERRY_PROVISION=none): create it with the settings in docs/events.md, or let its owner provision it", cfg.Name)
	}
	if _, err := js.CreateStream(ctx, cfg); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return fmt.Errorf("ferry: stream %s: %w", cfg.Name, err)
	}
	return nil
}

// RaiseMessageSize raises the stream's message size limit to at least
// size (a change that loses nothing, so any user of the stream may make
// it); a stream that allows as much or more is left as it is.
func RaiseMessageSize(ctx context.Context, js jetstream.JetStream, stream string, size int32) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("ferry: stream %s: %w", stream, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.MaxMsgSize <= 0 || cfg.MaxMsgSize >= size {
		return nil
	}
	cfg.MaxMsgSize = size
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("ferry: stream %s: raise its message size limit: %w", stream, err)
	}
	return nil
}

// Drift describes how have differs from want in the settings that decide
// what a stream keeps; "" when they agree.
func Drift(have, want jetstream.StreamConfig) string {
	var diffs []string
	add := func(what string, h, w any) {
		diffs = append(diffs, fmt.Sprintf("%s %v (declared %v)", what, h, w))
	}
	if strings.Join(have.Subjects, ",") != strings.Join(want.Subjects, ",") {
		add("subjects", have.Subjects, want.Subjects)
	}
	if have.MaxAge != want.MaxAge {
		add("max age", have.MaxAge, want.MaxAge)
	}
	if have.MaxBytes != want.MaxBytes {
		add("max bytes", have.MaxBytes, want.MaxBytes)
	}
	if have.Retention != want.Retention {
		add("retention", have.Retention, want.Retention)
	}
	return strings.Join(diffs, "; ")
}

// Bucket returns the key-value bucket cfg describes, creating or updating
// it when the mode and role allow (an update never lowers a size limit an
// operator raised).
func Bucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig, mode Mode, role Role) (jetstream.KeyValue, error) {
	if mode == ModeOwner && role == Owner {
		if existing, err := js.KeyValue(ctx, cfg.Bucket); err == nil {
			// An operator who enlarged the bucket keeps the larger limit.
			if st, err := existing.Status(ctx); err == nil {
				if kvs, ok := st.(*jetstream.KeyValueBucketStatus); ok {
					if have := kvs.StreamInfo().Config.MaxBytes; have < 0 || have > cfg.MaxBytes {
						cfg.MaxBytes = have // larger, or unlimited
					}
				}
			}
		}
		kv, err := js.CreateOrUpdateKeyValue(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("ferry: bucket %s: %w", cfg.Bucket, err)
		}
		return kv, nil
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	switch {
	case err == nil:
		return kv, nil
	case errors.Is(err, jetstream.ErrBucketNotFound) && mode == ModeNone:
		return nil, fmt.Errorf("ferry: bucket %s does not exist and provisioning is off (FERRY_PROVISION=none): create it as docs/events.md describes", cfg.Bucket)
	case errors.Is(err, jetstream.ErrBucketNotFound):
		created, cerr := js.CreateKeyValue(ctx, cfg)
		switch {
		case cerr == nil:
			return created, nil
		case errors.Is(cerr, jetstream.ErrBucketExists):
			return js.KeyValue(ctx, cfg.Bucket)
		}
		err = cerr
	}
	return nil, fmt.Errorf("ferry: bucket %s: %w", cfg.Bucket, err)
}

// Timeout bounds one provisioning call when the caller's context has no
// deadline.
const Timeout = 30 * time.Second
