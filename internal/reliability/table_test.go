package reliability_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/ferrygo/ferry/internal/reliability"
)

func TestTableRendersARowPerRecord(t *testing.T) {
	head := "| scenario | fault | runs | seed | acknowledged | found | lost | extra runs | figures | reproduce |\n" +
		"|---|---|--:|--:|--:|--:|--:|--:|---|---|\n"
	tests := []struct {
		name    string
		records []reliability.Record
		want    string
	}{
		{"none", nil, head},
		{"all fields", []reliability.Record{{
			Scenario: "broker-restart", Fault: "broker SIGKILLed", Runs: 3, Seed: 42,
			Acknowledged: 300, Found: 300, Lost: 0, Duplicates: 7,
			Command: "go run ./bench/faults -seed 42", Figures: map[string]string{"wall": "31s", "kills": "3"},
		}}, head + "| broker-restart | broker SIGKILLed | 3 | 42 | 300 | 300 | 0 | 7 | kills: 3, wall: 31s | `go run ./bench/faults -seed 42` |\n"},
		{"no seed, figures or command", []reliability.Record{{Scenario: "hostile-http", Fault: "bad requests", Runs: 120}},
			head + "| hostile-http | bad requests | 120 | — | 0 | 0 | 0 | 0 | — | — |\n"},
		{"pipes and new lines stay in the cell", []reliability.Record{{
			Scenario: "x", Fault: "a | b\nc", Figures: map[string]string{"p": "1|2"}, Command: "a | b `c`",
		}}, head + "| x | a \\| b c | 0 | — | 0 | 0 | 0 | 0 | p: 1\\|2 | `a \\| b 'c'` |\n"},
		{"in the order given", []reliability.Record{{Scenario: "b"}, {Scenario: "a"}},
			head + "| b |  | 0 | — | 0 | 0 | 0 | 0 | — | — |\n| a |  | 0 | — | 0 | 0 | 0 | 0 | — | — |\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reliability.Table(tt.records); got != tt.want {
				t.Errorf("Table:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestRenderReplacesOnlyBetweenTheMarkers(t *testing.T) {
	records := []reliability.Record{{Scenario: "s", Runs: 1}}
	table := reliability.Table(records)
	tests := []struct {
		name, doc, want string
		err             error
	}{
		{"empty table", "# T\n\n" + reliability.Begin + "\n" + reliability.End + "\n\nafter\n",
			"# T\n\n" + reliability.Begin + "\n" + table + reliability.End + "\n\nafter\n", nil},
		{"old table", "a\n" + reliability.Begin + "\n| old |\n" + reliability.End + "\nb",
			"a\n" + reliability.Begin + "\n" + table + reliability.End + "\nb", nil},
		{"no markers", "# T\n", "", reliability.ErrNoMarkers},
		{"end before begin", reliability.End + reliability.Begin, "", reliability.ErrNoMarkers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := reliability.Render(tt.doc, records)
			if !errors.Is(err, tt.err) || got != tt.want {
				t.Errorf("Render = %q, %v; want %q, %v", got, err, tt.want, tt.err)
			}
			if err == nil {
				again, _ := reliability.Render(got, records)
				if again != got {
					t.Errorf("Render is not stable:\n%s", strings.TrimSpace(again))
				}
			}
		})
	}
}
