package ferry_test

import (
	"flag"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
)

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    ferry.Config
		wantErr string
	}{
		{name: "defaults", want: ferry.Config{}},
		{name: "flags", args: []string{"-addr", "127.0.0.1:9000", "-shutdown-grace", "3s", "-log-level", "debug", "-log-format", "json"},
			want: ferry.Config{Addr: "127.0.0.1:9000", ShutdownGrace: 3 * time.Second, LogLevel: slog.LevelDebug, LogFormat: "json"}},
		{name: "bare port from env", env: map[string]string{"PORT": "9001"}, want: ferry.Config{Addr: ":9001"}},
		{name: "flag beats env", args: []string{"-addr", ":7000"}, env: map[string]string{"PORT": "9001", "FERRY_LOG_LEVEL": "warn"},
			want: ferry.Config{Addr: ":7000", LogLevel: slog.LevelWarn}},
		{name: "bad env names the variable", env: map[string]string{"FERRY_SHUTDOWN_GRACE": "soon"}, wantErr: "FERRY_SHUTDOWN_GRACE"},
		{name: "bad port", env: map[string]string{"PORT": "99999"}, wantErr: "PORT"},
		{name: "bad flag names the flag", args: []string{"-log-format", "xml"}, wantErr: "log-format"},
		{name: "negative grace", args: []string{"-shutdown-grace", "-1s"}, wantErr: "shutdown-grace"},
		{name: "body over NATS's limit", env: map[string]string{"FERRY_MAX_BODY": "1024GiB"}, wantErr: "FERRY_MAX_BODY"},
		{name: "body at the limit", args: []string{"-max-body", "64MiB"}, want: ferry.Config{MaxBody: 64 << 20}},
		{name: "provision none", env: map[string]string{"FERRY_PROVISION": "none"}, want: ferry.Config{Provision: "none"}},
		{name: "bad provision", args: []string{"-provision", "some"}, wantErr: "provision"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			got, err := ferry.LoadConfigEnv(fs, tt.args, tt.env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestConfigDocumented keeps docs/configuration.md true to the settings.
func TestConfigDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ferry.ConfigSettings() {
		def := "`" + s.Default + "`"
		if s.Default == "" {
			def = "none"
		}
		row := "| `-" + s.Flag + "` | `" + s.Env + "` | " + def + " |"
		if !strings.Contains(string(doc), row) {
			t.Errorf("docs/configuration.md lacks the row starting %q", row)
		}
	}
}
