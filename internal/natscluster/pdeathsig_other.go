//go:build !linux

package natscluster

import "os/exec"

// DieWithParent does nothing here: only Linux ties a child's life to its
// parent's.
func DieWithParent(*exec.Cmd) {}
