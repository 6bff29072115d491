package ferry_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReview13_VulnGateFailsWithoutAScan: .ci/vulngate.go is CI's
// govulncheck step. It passes ("no known vulnerable symbol reached")
// whenever it reads no finding — including when it read nothing at all,
// or only govulncheck's opening messages: a govulncheck that printed
// nothing, a pipe cut short, a database that indexed no reports (a
// changed layout of the pinned vulndb module makes indexdb index an
// empty directory), all pass the gate. The gate should require the
// evidence of a scan (govulncheck's config message naming the database,
// and its SBOM of the modules scanned) before it passes.
//
// FAILS on the current code: the gate exits 0 on both inputs.
func TestReview13_VulnGateFailsWithoutAScan(t *testing.T) {
	tests := []struct{ name, stdin string }{
		{"no output at all", ""},
		{"only a progress line, no config, no SBOM", `{"progress":{"message":"Scanning your code and 0 packages across 0 dependent modules for known vulnerabilities..."}}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("go", "run", ".ci/vulngate.go", ".ci/govulncheck-accepted")
			cmd.Stdin = strings.NewReader(tt.stdin)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Errorf("vulngate passed on %q: %s", tt.stdin, out)
			}
		})
	}
}
