package ferrytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReview10ClusterNodesDieWithTheTestBinary: a test binary that dies
// without running its cleanups (go test -timeout panics, SIGKILL, a
// crash) leaves no nats-server running: the nodes go with their parent.
func TestReview10ClusterNodesDieWithTheTestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nats-server")
	}
	pidFile := os.Getenv("REVIEW10_PID_FILE")
	if pidFile != "" { // the child: start a node, record its pid, die
		c := StartCluster(t, 1)
		pid := c.nodes[0].cmd.Process.Pid
		_ = os.WriteFile(pidFile, []byte(strconv.Itoa(pid)), 0o644)
		os.Exit(3) // as a timeout panic does: no cleanups
	}
	pidFile = filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(os.Args[0], "-test.run=^TestReview10ClusterNodesDieWithTheTestBinary$", "-test.count=1")
	cmd.Env = append(os.Environ(), "REVIEW10_PID_FILE="+pidFile)
	out, _ := cmd.CombinedOutput()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("child recorded no pid: %v\n%s", err, out)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if syscall.Kill(pid, 0) != nil {
			return // gone
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL) // the orphan this test made
	t.Errorf("nats-server %d outlived the test binary that started it", pid)
}
