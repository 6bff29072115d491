package broker

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// ferryLines returns the INFO and WARN lines Ferry itself logged (not the
// embedded server's).
func ferryLines(logs *logRecords) []string {
	var out []string
	for _, line := range logs.all() {
		if (strings.HasPrefix(line, "INFO ferry:") || strings.HasPrefix(line, "WARN ferry:")) && !strings.Contains(line, "nats-server:") {
			out = append(out, line)
		}
	}
	return out
}

// TestEmbeddedStartLogs: an embedded broker says in at most two lines
// where its data lives (an absolute path), whether other processes can
// reach it, and that replicas in production need FERRY_NATS_URL.
func TestEmbeddedStartLogs(t *testing.T) {
	tests := []struct {
		name   string
		listen string
		want   []string // in the start line
	}{
		{"in process", "", []string{"other processes cannot reach it", "FERRY_NATS_LISTEN"}},
		{"listening", "127.0.0.1:0", []string{"url=nats://127.0.0.1:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wd := t.TempDir()
			t.Chdir(wd)
			logs := &logRecords{}
			b, err := Open(context.Background(), Options{DataDir: "data", Listen: tt.listen, Logger: logs.logger()})
			if err != nil {
				t.Fatal(err)
			}
			lines := ferryLines(logs)
			_ = b.Close(context.Background())
			abs := "data_dir=" + filepath.Join(wd, "data")
			if logs.find(append([]string{"INFO ", abs}, tt.want...)...) == "" {
				t.Errorf("no start line with %s and %q in:\n%s", abs, tt.want, strings.Join(lines, "\n"))
			}
			if logs.find("WARN ", "FERRY_NATS_URL", "replicas") == "" {
				t.Errorf("no warning that replicas need FERRY_NATS_URL in:\n%s", strings.Join(lines, "\n"))
			}
			if len(lines) > 2 {
				t.Errorf("%d lines at start, want at most 2:\n%s", len(lines), strings.Join(lines, "\n"))
			}
		})
	}
}

// TestConnectionLogs: a joining or external connection logs, once, the
// URL it uses, without the credentials in it.
func TestConnectionLogs(t *testing.T) {
	userPass := testServer(t, func(o *server.Options) { o.Username, o.Password = "ferry", "s3cret-pass" })
	token := testServer(t, func(o *server.Options) { o.Authorization = "s3cret-token" })
	dir := t.TempDir()
	owner, err := Open(context.Background(), Options{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(context.Background())
	hostPort := func(s *server.Server) string { return strings.TrimPrefix(s.ClientURL(), "nats://") }
	tests := []struct {
		name   string
		opts   Options
		want   string // in the line
		secret string // not anywhere in the log
	}{
		{"joined", Options{DataDir: dir}, "url=" + owner.URL(), ""},
		{"user and password", Options{URL: "nats://ferry:s3cret-pass@" + hostPort(userPass)}, hostPort(userPass), "s3cret-pass"},
		{"token", Options{URL: "nats://s3cret-token@" + hostPort(token)}, hostPort(token), "s3cret-token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logRecords{}
			tt.opts.Logger = logs.logger()
			b, err := Open(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			_ = b.Close(context.Background())
			lines := ferryLines(logs)
			if n := len(lines); n != 1 || !strings.Contains(lines[0], tt.want) {
				t.Errorf("want one line with %q, got:\n%s", tt.want, strings.Join(lines, "\n"))
			}
			if tt.secret != "" {
				for _, line := range logs.all() {
					if strings.Contains(line, tt.secret) {
						t.Errorf("the log shows the credentials: %s", line)
					}
				}
			}
		})
	}
}
