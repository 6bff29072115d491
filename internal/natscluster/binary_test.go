package natscluster_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/ferrygo/ferry/internal/natscluster"
)

// TestBinaryIsCachedByVersion: the server is cached under the version this
// module requires, so a second call finds the first one's build.
func TestBinaryIsCachedByVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nats-server")
	}
	bin, err := natscluster.Binary(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if base := filepath.Base(bin); !strings.HasPrefix(base, "nats-server-v2.") || filepath.Base(filepath.Dir(bin)) != "ferry" {
		t.Errorf("nats-server at %s; want ferry/nats-server-<version>", bin)
	}
	again, err := natscluster.Binary(t.Context())
	if err != nil || again != bin {
		t.Errorf("second Binary() = %q, %v; want %q", again, err, bin)
	}
}
