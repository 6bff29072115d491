package ferry_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Record is one scenario's result for the reliability table: same shape as
// internal/reliability.Record.
type Record struct {
	Scenario     string            `json:"scenario"`
	Fault        string            `json:"fault"`
	Runs         int               `json:"runs"`
	Seed         int64             `json:"seed,omitempty"`
	Acknowledged int               `json:"acknowledged"`
	Found        int               `json:"found"`
	Lost         int               `json:"lost"`
	Duplicates   int               `json:"duplicates"`
	Command      string            `json:"command"`
	Figures      map[string]string `json:"figures,omitempty"`
	Notes        string            `json:"notes,omitempty"`
	When         time.Time         `json:"when"`
}

// writeRecord writes r as <dir>/<scenario>.json when
// FERRY_RELIABILITY_RECORDS names a directory, and nothing otherwise.
func writeRecord(t *testing.T, r Record) {
	t.Helper()
	dir := os.Getenv("FERRY_RELIABILITY_RECORDS")
	if dir == "" {
		return
	}
	if r.When.IsZero() {
		r.When = time.Now().UTC().Truncate(time.Second)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, r.Scenario+".json"), append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
