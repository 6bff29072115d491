package ferrytest

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestReview10NATSServerCacheKeyedByVersion: the nats-server binary is
// cached under the pinned version, not "unknown" (a test binary's build
// information records no dependencies), so it is built once per machine
// and version rather than at every StartCluster.
func TestReview10NATSServerCacheKeyedByVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds nats-server")
	}
	bin := natsServerBinary(t)
	if !strings.HasPrefix(filepath.Base(bin), "nats-server-v2.") {
		t.Errorf("nats-server cached as %s; want it keyed by the pinned version", bin)
	}
}
