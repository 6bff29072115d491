// Command vulngate reads govulncheck's JSON (-format json) on standard
// input and fails when the code reaches a known vulnerable symbol, unless
// the vulnerability is in the standard library and listed, with its
// reason, in the file named by its argument (.ci/govulncheck-accepted):
// a module's vulnerability is never accepted (bump the module instead),
// and a newly published one in the standard library fails CI until the
// toolchain is upgraded or it is listed.
//
//	go run golang.org/x/vuln/cmd/govulncheck@v1.9.0 -format json ./... | go run .ci/vulngate.go .ci/govulncheck-accepted
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

type message struct {
	Config *struct {
		ScannerName string `json:"scanner_name"`
		DB          string `json:"db"`
	} `json:"config"`
	SBOM *struct {
		Modules []json.RawMessage `json:"modules"`
	} `json:"SBOM"`
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Version  string `json:"version"`
			Package  string `json:"package"`
			Function string `json:"function"`
			Receiver string `json:"receiver"`
		} `json:"trace"`
	} `json:"finding"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: govulncheck -format json ./... | go run .ci/vulngate.go ACCEPTED_FILE")
		os.Exit(2)
	}
	accepted, err := readAccepted(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulngate:", err)
		os.Exit(2)
	}
	reached := map[string]string{}  // ID → "module@version: package.function (fixed in …)"
	configured, modules := false, 0 // a scan ran: its configuration, and the modules it read
	dec := json.NewDecoder(bufio.NewReader(os.Stdin))
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "vulngate: reading govulncheck's output:", err)
			os.Exit(2)
		}
		if m.Config != nil && m.Config.ScannerName != "" && m.Config.DB != "" {
			configured = true
		}
		if m.SBOM != nil {
			modules += len(m.SBOM.Modules)
		}
		if m.Finding == nil || len(m.Finding.Trace) == 0 || m.Finding.Trace[0].Function == "" {
			continue // a module or package imported, no vulnerable symbol reached
		}
		t := m.Finding.Trace[0]
		fn := t.Function
		if t.Receiver != "" {
			fn = t.Receiver + "." + fn
		}
		if _, seen := reached[m.Finding.OSV]; !seen {
			reached[m.Finding.OSV] = fmt.Sprintf("%s@%s: %s.%s (fixed in %s)", t.Module, t.Version, t.Package, fn, m.Finding.FixedVersion)
		}
		if t.Module != "stdlib" {
			accepted[m.Finding.OSV] = "" // a module's vulnerability is never accepted
		}
	}
	if !configured || modules == 0 {
		fmt.Fprintln(os.Stderr, "vulngate: govulncheck's output has no configuration or no modules: no scan ran")
		os.Exit(2)
	}
	ids := make([]string, 0, len(reached))
	for id := range reached {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	failed := 0
	for _, id := range ids {
		if why := accepted[id]; why != "" && strings.HasPrefix(reached[id], "stdlib@") {
			fmt.Printf("accepted  %s  %s — %s\n", id, reached[id], why)
			continue
		}
		fmt.Printf("REACHED   %s  %s\n", id, reached[id])
		failed++
	}
	if failed > 0 {
		fmt.Printf("vulngate: %d known vulnerabilities reached by the code: bump the module (or the Go toolchain)\n", failed)
		os.Exit(1)
	}
	fmt.Printf("vulngate: no known vulnerable symbol reached (%d in the standard library accepted)\n", len(ids))
}

// readAccepted reads "ID reason…" lines; # starts a comment.
func readAccepted(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for line := range strings.Lines(string(raw)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, why, _ := strings.Cut(line, " ")
		if strings.TrimSpace(why) == "" {
			return nil, fmt.Errorf("%s: %s has no reason", path, id)
		}
		out[id] = strings.TrimSpace(why)
	}
	return out, nil
}
