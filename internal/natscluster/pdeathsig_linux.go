package natscluster

import (
	"os/exec"
	"syscall"
)

// DieWithParent makes cmd's process receive SIGKILL when the thread that
// starts it ends — with the starting program, in practice — so that a
// program or test binary that dies without cleaning up (a timeout panic,
// SIGKILL, a crash) leaves no server behind. Call it before cmd.Start.
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
