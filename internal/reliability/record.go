// Package reliability holds the records that Ferry's fault and bad-input
// runs write, and renders them as the table in docs/reliability.md. A run
// writes one [Record] per scenario with [Write] when the environment
// variable FERRY_RELIABILITY_RECORDS (see [RecordsEnv]) names a
// directory; the committed records live in docs/reliability/records, and
// the report command (./internal/reliability/cmd/report) regenerates the
// table from them.
package reliability

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// RecordsEnv is the environment variable that names the directory a run
// writes its record to; unset, it writes none.
const RecordsEnv = "FERRY_RELIABILITY_RECORDS"

// Record is the outcome of one scenario: what was done, how often, and what
// the checker found afterwards. Its JSON is the committed record.
type Record struct {
	// Scenario is the scenario's stable ID, such as "broker-restart"; it
	// names the record's file.
	Scenario string `json:"scenario"`
	// Fault says what was done, in one line.
	Fault string `json:"fault"`
	// Runs counts how many times the fault was injected, or the inputs
	// tried.
	Runs int `json:"runs"`
	// Seed replays the run's schedule, for randomised runs.
	Seed int64 `json:"seed,omitempty"`
	// Acknowledged counts the operations the client got a success for,
	// persisted by the driver as it went.
	Acknowledged int `json:"acknowledged"`
	// Found counts those found processed or recorded afterwards.
	Found int `json:"found"`
	// Lost counts the acknowledged operations not found: it must be 0.
	Lost int `json:"lost"`
	// Duplicates counts the operations processed more than once (delivery
	// is at least once), absorbed by idempotency keys.
	Duplicates int `json:"duplicates"`
	// Command is the command that reproduces the run.
	Command string `json:"command"`
	// Figures are other measurements, by name: "election": "1.8s".
	Figures map[string]string `json:"figures,omitempty"`
	// Notes say anything else a reader needs.
	Notes string `json:"notes,omitempty"`
	// When is when the run ended.
	When time.Time `json:"when"`
}

// scenarioID is what a scenario's ID may be: it names a file.
var scenarioID = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)

// WriteAsked writes r as Write does into the directory RecordsEnv names,
// and nothing when it names none: what a test that measures a scenario
// calls at its end.
func WriteAsked(r Record) error {
	dir := os.Getenv(RecordsEnv)
	if dir == "" {
		return nil
	}
	return Write(dir, r)
}

// Write stores r as dir/<r.Scenario>.json, replacing an earlier record of
// the scenario, and creates dir if needed. A zero When is set to now.
func Write(dir string, r Record) error {
	if !scenarioID.MatchString(r.Scenario) {
		return fmt.Errorf("reliability: scenario %q: want lower-case letters, digits and -", r.Scenario)
	}
	if r.When.IsZero() {
		r.When = time.Now().UTC().Truncate(time.Second)
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("reliability: record %s: %w", r.Scenario, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("reliability: record %s: %w", r.Scenario, err)
	}
	path := filepath.Join(dir, r.Scenario+".json")
	tmp, err := os.CreateTemp(dir, "."+r.Scenario+"-*.json")
	if err != nil {
		return fmt.Errorf("reliability: record %s: %w", r.Scenario, err)
	}
	_, err = tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("reliability: record %s: %w", r.Scenario, err)
	}
	return nil
}

// Read returns the records in dir (every *.json file), sorted by
// scenario. A file that is not a record, or whose scenario does not match
// its name, is an error.
func Read(dir string) ([]Record, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("reliability: %w", err)
	}
	var out []Record
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reliability: %w", err)
		}
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("reliability: %s: %w", path, err)
		}
		if want := strings.TrimSuffix(filepath.Base(path), ".json"); r.Scenario != want {
			return nil, fmt.Errorf("reliability: %s holds scenario %q", path, r.Scenario)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scenario < out[j].Scenario })
	return out, nil
}

// ErrNoMarkers is the error of a document without the table's markers.
var ErrNoMarkers = errors.New("reliability: the document has no " + Begin + " … " + End + " markers")
