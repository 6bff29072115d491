package ferrytest

import (
	"runtime/debug"
	"testing"
)

// TestReview10BuildInfoHasNATSServer: the test binary's build information
// names the pinned nats-server, so natsServerBinary keys its cache by
// version instead of "unknown" (which it rebuilds every time).
func TestReview10BuildInfoHasNATSServer(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info")
	}
	t.Logf("main %q %q, %d deps", bi.Main.Path, bi.Main.Version, len(bi.Deps))
	for _, d := range bi.Deps {
		if d.Path == natsServerModule {
			return
		}
	}
	t.Errorf("build info lacks %s: the nats-server cache is keyed \"unknown\" and rebuilt at each StartCluster", natsServerModule)
}
