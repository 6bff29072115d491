package ferrytest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes cmd's process receive SIGKILL when the thread that
// starts it ends — with the test binary, in practice — so that a test
// binary killed by its timeout leaves no server behind.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
