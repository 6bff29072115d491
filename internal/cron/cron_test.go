package cron

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		expr    string
		zoned   bool
		wantErr string // "" when valid
	}{
		{expr: "* * * * * *"},
		{expr: "0 0 2 * * *"},
		{expr: "0 */15 9-17 * * mon-FRI"},
		{expr: "0 0 0 1,15 jan,Jul ?"},
		{expr: "30 5/10 * * * *"},
		{expr: "0 0 0 29 2 *"},
		{expr: "0\t0  12 * * 0"},
		{expr: "*/1 * * * * *"},
		{expr: "@hourly"},
		{expr: "@daily", zoned: true},
		{expr: "@every 90s"},
		{expr: "@every 1h30m"},
		{expr: "", wantErr: "empty"},
		{expr: "0 2 * * *", wantErr: `has 5 fields; want 6: seconds minutes hours day-of-month month day-of-week (the first is seconds: "0 0 2 * * *"`},
		{expr: "* * * * * * *", wantErr: "has 7 fields"},
		{expr: "0 0 25 * * *", wantErr: `hours field "25": 25 is above the maximum 23`},
		{expr: "60 * * * * *", wantErr: "60 is above the maximum 59"},
		{expr: "0 0 0 0 * *", wantErr: "0 is below the minimum 1"},
		{expr: "0 0 0 * * 7", wantErr: "(Sunday is 0)"},
		{expr: "0 0 0 * 13 *", wantErr: "above the maximum 12"},
		{expr: "0 0 0 * foo *", wantErr: `"foo" is not a number (or a three-letter English name)`},
		{expr: "+5 * * * * *", wantErr: "not a number"},
		{expr: "*-5 * * * * *", wantErr: "not a number"},
		{expr: "1,,2 * * * * *", wantErr: "empty list item"},
		{expr: "5/0 * * * * *", wantErr: "the step must be at least 1"},
		{expr: "5/x * * * * *", wantErr: "step"},
		{expr: "1/2/3 * * * * *", wantErr: "step"},
		{expr: "1-2-3 * * * * *", wantErr: "not a number"},
		{expr: "10-5 * * * * *", wantErr: "runs backwards"},
		{expr: "99999999999999999999 * * * * *", wantErr: "not a number"},
		{expr: "0 0 0 31 2 *", wantErr: "never fires"},
		{expr: "0 0 0 30 2 *", wantErr: "never fires"},
		{expr: "@every 500ms", wantErr: "at least 1s"},
		{expr: "@every soon", wantErr: "duration"},
		{expr: "@every 1m", zoned: true, wantErr: "no time zone"},
		{expr: "@at 2030-01-01T00:00:00Z", wantErr: "EnqueueAt"},
		{expr: "@fortnightly", wantErr: "unknown"},
		{expr: "@hourly ", wantErr: "unknown"},
		{expr: strings.Repeat("1,", 200) + "1 * * * * *", wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			var loc *time.Location
			if tt.zoned {
				loc = time.FixedZone("X", 3600)
			}
			_, err := Parse(tt.expr, loc)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Parse: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Parse: %v; want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestNext(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		expr string
		loc  *time.Location
		from string
		want []string
	}{
		{"* * * * * *", nil, "2030-01-01T00:00:00.5Z", []string{"2030-01-01T00:00:01Z", "2030-01-01T00:00:02Z"}},
		{"0 0 2 * * *", nil, "2030-01-01T02:00:00Z", []string{"2030-01-02T02:00:00Z", "2030-01-03T02:00:00Z"}},
		{"0 0 2 * * *", paris, "2030-01-01T00:00:00Z", []string{"2030-01-01T01:00:00Z"}},
		{"@hourly", nil, "2030-01-01T00:59:59Z", []string{"2030-01-01T01:00:00Z", "2030-01-01T02:00:00Z"}},
		// Day of month OR day of week when neither is "*": the 13th or a Friday.
		{"0 0 0 13 * fri", nil, "2030-01-01T00:00:00Z", []string{"2030-01-04T00:00:00Z", "2030-01-11T00:00:00Z", "2030-01-13T00:00:00Z"}},
		{"0 0 0 29 2 *", nil, "2030-01-01T00:00:00Z", []string{"2032-02-29T00:00:00Z"}},
		{"@every 90s", nil, "2030-01-01T00:00:00Z", []string{"2030-01-01T00:01:30Z", "2030-01-01T00:03:00Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			s, err := Parse(tt.expr, tt.loc)
			if err != nil {
				t.Fatal(err)
			}
			cur := at(tt.from)
			for _, w := range tt.want {
				cur = s.Next(cur)
				if !cur.Equal(at(w)) {
					t.Fatalf("Next: %v; want %s", cur.UTC(), w)
				}
			}
		})
	}
}

func TestCountFrom(t *testing.T) {
	s, _ := Parse("* * * * * *", nil)
	first := time.Date(2030, 1, 1, 0, 0, 10, 0, time.UTC)
	tests := []struct {
		now   time.Duration // after first
		limit int
		want  int
	}{
		{-time.Second, 10, 0},
		{0, 10, 1},
		{4500 * time.Millisecond, 10, 5},
		{time.Hour, 3, 3},
	}
	for _, tt := range tests {
		if got := s.CountFrom(first, first.Add(tt.now), tt.limit); got != tt.want {
			t.Errorf("CountFrom(+%v, limit %d) = %d; want %d", tt.now, tt.limit, got, tt.want)
		}
	}
}

// FuzzParse: Parse never panics, and a schedule it accepts fires at
// times that match it, strictly later each time.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"* * * * * *", "0 0 2 * * *", "0 */15 9-17 * * mon-fri", "1,2,3 4-5/2 * ? jan *",
		"@daily", "@every 1m", "0 0 0 29 2 *", "5/0 * * * * *", "*/7 * * 1-31/3 * sun"} {
		f.Add(s)
	}
	start := time.Date(2031, 3, 30, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, expr string) {
		s, err := Parse(expr, nil)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		prev := start
		for range 5 {
			next := s.Next(prev)
			if next.IsZero() {
				return // a rare date beyond five years from this start
			}
			if !next.After(prev) || !s.Matches(next) {
				t.Fatalf("%q: Next(%v) = %v: not later, or does not match", expr, prev, next)
			}
			prev = next
		}
	})
}
