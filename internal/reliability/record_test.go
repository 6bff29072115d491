package reliability_test

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/ferrygo/ferry/internal/reliability"
)

func TestWriteThenRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "records")
	when := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	b := reliability.Record{Scenario: "broker-restart", Fault: "kill", Runs: 2, Seed: 7, Acknowledged: 10, Found: 10,
		Duplicates: 1, Command: "go run x", Figures: map[string]string{"wall": "3s"}, Notes: "n", When: when}
	a := reliability.Record{Scenario: "a-first", Runs: 1}
	for _, r := range []reliability.Record{b, a} {
		if err := reliability.Write(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := reliability.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Scenario != "a-first" || got[0].When.IsZero() {
		t.Fatalf("Read = %+v; want a-first (When set by Write), then broker-restart", got)
	}
	if !reflect.DeepEqual(got[1], b) {
		t.Errorf("Read = %+v; want %+v", got[1], b)
	}
	b.Runs = 3
	if err := reliability.Write(dir, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := reliability.Read(dir); len(got) != 2 || got[1].Runs != 3 {
		t.Errorf("after a second Write: %+v; want the record replaced", got)
	}
}

func TestWriteAndReadRefuse(t *testing.T) {
	dir := t.TempDir()
	for _, scenario := range []string{"", "Upper", "../x", "a b", "a.json"} {
		if err := reliability.Write(dir, reliability.Record{Scenario: scenario}); err == nil {
			t.Errorf("Write(scenario %q) = nil; want an error", scenario)
		}
	}
	tests := []struct{ name, file, content string }{
		{"not JSON", "x.json", "{"},
		{"scenario differs from the name", "y.json", `{"scenario":"z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.file), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := reliability.Read(dir); err == nil {
				t.Errorf("Read = nil error; want one")
			}
		})
	}
}

// TestCommittedTableMatchesTheRecords keeps docs/reliability.md's table
// true to docs/reliability/records: regenerate it with
// go run ./internal/reliability/cmd/report.
func TestCommittedTableMatchesTheRecords(t *testing.T) {
	root := filepath.Join("..", "..")
	records, err := reliability.Read(filepath.Join(root, "docs", "reliability", "records"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "reliability.md"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := reliability.Render(string(doc), records)
	if err != nil {
		t.Fatal(err)
	}
	if string(doc) != want {
		t.Errorf("docs/reliability.md's table does not match docs/reliability/records (%d records): "+
			"run go run ./internal/reliability/cmd/report", len(records))
	}
	for _, r := range records { // what the page promises of every record
		if r.Lost != 0 || r.Found+r.Lost != r.Acknowledged || r.Found > r.Acknowledged {
			t.Errorf("record %s: acknowledged %d, found %d, lost %d: a committed record loses nothing and accounts for every ack",
				r.Scenario, r.Acknowledged, r.Found, r.Lost)
		}
	}
}
