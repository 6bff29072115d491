package ferrytest

import (
	"os/exec"

	"github.com/ferrygo/ferry/internal/natscluster"
)

// dieWithParent makes cmd's process die with the test binary on Linux, so
// that a test binary killed by its timeout leaves no process behind; see
// [natscluster.DieWithParent].
func dieWithParent(cmd *exec.Cmd) { natscluster.DieWithParent(cmd) }
