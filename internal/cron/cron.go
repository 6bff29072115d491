// Package cron reads the schedules of periodic jobs as nats-server reads
// a message schedule's pattern, so a mistake is reported when the job is
// declared rather than when the broker refuses the schedule: the 6-field
// form (seconds minutes hours day-of-month month day-of-week), the
// predefined @yearly, @annually, @monthly, @weekly, @daily, @midnight and
// @hourly, and "@every <duration>".
//
// It accepts a subset of what the server accepts (no signs, no empty list
// items, no "*-n"), and computes the times a schedule fires with the
// server's algorithm (robfig/cron's): Next is the server's next firing.
package cron

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Schedule is a parsed schedule.
type Schedule struct {
	expr  string
	every time.Duration // "@every d"; the fields are unused
	loc   *time.Location

	second, minute, hour, dom, month, dow uint64
}

// starBit marks a field written "*" or "?" (without a step above 1): the
// day-of-month and day-of-week fields then combine with AND, otherwise
// with OR, as in the server.
const starBit = 1 << 63

// bounds are a field's values and names.
type bounds struct {
	what     string
	min, max uint
	names    map[string]uint
}

var fields = [6]bounds{
	{what: "seconds", min: 0, max: 59},
	{what: "minutes", min: 0, max: 59},
	{what: "hours", min: 0, max: 23},
	{what: "day of month", min: 1, max: 31},
	{what: "month", min: 1, max: 12, names: map[string]uint{
		"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}},
	{what: "day of week", min: 0, max: 6, names: map[string]uint{
		"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}},
}

// predefined are the server's names of common schedules.
var predefined = map[string]string{
	"@yearly":   "0 0 0 1 1 *",
	"@annually": "0 0 0 1 1 *",
	"@monthly":  "0 0 0 1 * *",
	"@weekly":   "0 0 0 * * 0",
	"@daily":    "0 0 0 * * *",
	"@midnight": "0 0 0 * * *",
	"@hourly":   "0 0 * * * *",
}

// maxLength bounds an expression.
const maxLength = 256

// Parse reads expr, firing in loc (nil: UTC). The error says what is
// wrong in words a person can act on.
func Parse(expr string, loc *time.Location) (*Schedule, error) {
	s := &Schedule{expr: expr, loc: loc}
	if loc == nil {
		s.loc = time.UTC
	}
	if err := s.parse(expr, loc != nil); err != nil {
		return nil, fmt.Errorf("cron expression %q: %w", expr, err)
	}
	return s, nil
}

func (s *Schedule) parse(expr string, zoned bool) error {
	switch {
	case expr == "":
		return errors.New("empty")
	case len(expr) > maxLength:
		return fmt.Errorf("longer than %d bytes", maxLength)
	case strings.HasPrefix(expr, "@every "):
		d, err := time.ParseDuration(expr[len("@every "):])
		switch {
		case err != nil:
			return fmt.Errorf("@every takes a duration such as 90s or 1h30m: %w", err)
		case d < time.Second:
			return errors.New("@every must be at least 1s")
		case zoned:
			return errors.New("@every takes no time zone (the server refuses one)")
		}
		s.every = d
		return nil
	case strings.HasPrefix(expr, "@at"):
		return errors.New("@at is a single time, not a schedule: enqueue the job with EnqueueAt")
	case strings.HasPrefix(expr, "@"):
		p, ok := predefined[expr]
		if !ok {
			return errors.New("unknown; the @ forms are @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly and @every <duration>")
		}
		expr = p
	}
	f := strings.Fields(expr)
	if len(f) != 6 {
		hint := ""
		if len(f) == 5 {
			hint = " (the first is seconds: \"0 " + expr + "\" for the classic 5-field form)"
		}
		return fmt.Errorf("has %d fields; want 6: seconds minutes hours day-of-month month day-of-week%s", len(f), hint)
	}
	dst := [6]*uint64{&s.second, &s.minute, &s.hour, &s.dom, &s.month, &s.dow}
	for i, field := range f {
		b, err := parseField(field, fields[i])
		if err != nil {
			return fmt.Errorf("%s field %q: %w", fields[i].what, field, err)
		}
		*dst[i] = b
	}
	// The server refuses a pattern that does not fire within five years
	// (31 February, for instance).
	if s.Next(time.Now()).IsZero() {
		return errors.New("never fires (no such date within five years)")
	}
	return nil
}

// parseField reads one field: a comma-separated list of "*", "?", n,
// n-m, each optionally followed by /step ("n/step" runs to the maximum).
func parseField(field string, b bounds) (uint64, error) {
	var set uint64
	for item := range strings.SplitSeq(field, ",") {
		if item == "" {
			return 0, errors.New("empty list item")
		}
		rng, stepText, hasStep := strings.Cut(item, "/")
		var lo, hi uint
		star := false
		if rng == "*" || rng == "?" {
			lo, hi, star = b.min, b.max, true
		} else {
			loText, hiText, isRange := strings.Cut(rng, "-")
			var err error
			if lo, err = b.value(loText); err != nil {
				return 0, err
			}
			hi = lo
			switch {
			case isRange:
				if hi, err = b.value(hiText); err != nil {
					return 0, err
				}
			case hasStep:
				hi = b.max
			}
		}
		step := uint(1)
		if hasStep {
			n, err := number(stepText)
			switch {
			case err != nil:
				return 0, fmt.Errorf("step: %w", err)
			case n == 0:
				return 0, errors.New("the step must be at least 1")
			}
			step = n
		}
		if lo > hi {
			return 0, fmt.Errorf("range %d-%d runs backwards", lo, hi)
		}
		for v := lo; v <= hi; v += step {
			set |= 1 << v
		}
		if star && step == 1 {
			set |= starBit
		}
	}
	return set, nil
}

// value reads a number or, in the month and day-of-week fields, a
// three-letter name, within the field's bounds.
func (b bounds) value(text string) (uint, error) {
	if n, ok := b.names[strings.ToLower(text)]; ok {
		return n, nil
	}
	n, err := number(text)
	if err != nil {
		if b.names != nil {
			return 0, fmt.Errorf("%w (or a three-letter English name)", err)
		}
		return 0, err
	}
	switch {
	case n < b.min:
		return 0, fmt.Errorf("%d is below the minimum %d", n, b.min)
	case n > b.max:
		hint := ""
		if b.what == "day of week" && n == 7 {
			hint = " (Sunday is 0)"
		}
		return 0, fmt.Errorf("%d is above the maximum %d%s", n, b.max, hint)
	}
	return n, nil
}

// number reads a non-negative decimal number of at most four digits.
func number(text string) (uint, error) {
	if text == "" || len(text) > 4 || strings.Trim(text, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number", text)
	}
	n, _ := strconv.Atoi(text)
	return uint(n), nil
}

// String returns the expression as written.
func (s *Schedule) String() string { return s.expr }

// Next returns the first time after t (to the second) when the schedule
// fires, or the zero time if it does not fire within five years.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return t.Round(time.Second).Add(s.every)
	}
	// The server's algorithm: advance the largest field that does not
	// match, truncating the smaller ones the first time, and start over
	// when a field wraps.
	next := t.In(s.loc).Truncate(time.Second).Add(time.Second)
	truncated := false
	yearLimit := next.Year() + 5
wrap:
	if next.Year() > yearLimit {
		return time.Time{}
	}
	for 1<<uint(next.Month())&s.month == 0 {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), 1, 0, 0, 0, 0, s.loc)
		}
		if next = next.AddDate(0, 1, 0); next.Month() == time.January {
			goto wrap
		}
	}
	for !s.dayMatches(next) {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), next.Day(), 0, 0, 0, 0, s.loc)
		}
		if next = next.AddDate(0, 0, 1); next.Day() == 1 {
			goto wrap
		}
	}
	for 1<<uint(next.Hour())&s.hour == 0 {
		if !truncated {
			truncated = true
			next = time.Date(next.Year(), next.Month(), next.Day(), next.Hour(), 0, 0, 0, s.loc)
		}
		if next = next.Add(time.Hour); next.Hour() == 0 {
			goto wrap
		}
	}
	for 1<<uint(next.Minute())&s.minute == 0 {
		if !truncated {
			truncated = true
			next = next.Truncate(time.Minute)
		}
		if next = next.Add(time.Minute); next.Minute() == 0 {
			goto wrap
		}
	}
	for 1<<uint(next.Second())&s.second == 0 {
		if !truncated {
			truncated = true
			next = next.Truncate(time.Second)
		}
		if next = next.Add(time.Second); next.Second() == 0 {
			goto wrap
		}
	}
	return next
}

// dayMatches reports whether t's day satisfies the day-of-month and
// day-of-week fields: both if either is "*", else either.
func (s *Schedule) dayMatches(t time.Time) bool {
	domMatch := 1<<uint(t.Day())&s.dom != 0
	dowMatch := 1<<uint(t.Weekday())&s.dow != 0
	if s.dom&starBit != 0 || s.dow&starBit != 0 {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}

// Matches reports whether the schedule fires at t (to the second); an
// @every schedule matches any time.
func (s *Schedule) Matches(t time.Time) bool {
	if s.every > 0 {
		return true
	}
	t = t.In(s.loc)
	return 1<<uint(t.Second())&s.second != 0 && 1<<uint(t.Minute())&s.minute != 0 && 1<<uint(t.Hour())&s.hour != 0 &&
		1<<uint(t.Month())&s.month != 0 && s.dayMatches(t)
}

// CountFrom counts the firings from first (a firing) up to now, stopping
// at limit: how many ticks came due since first, first included.
func (s *Schedule) CountFrom(first, now time.Time, limit int) int {
	n := 0
	for t := first; !t.IsZero() && !t.After(now) && n < limit; t = s.Next(t) {
		n++
	}
	return n
}
