package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/ferrygo/ferry"
)

// printJSON writes v as indented JSON to stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// table writes rows under headers, columns aligned; cells are cut to fit
// the terminal's width by shortening the widest column.
func (a *app) table(headers []string, rows [][]string) {
	width := a.width()
	widths := make([]int, len(headers))
	for _, r := range append([][]string{headers}, rows...) {
		for i, c := range r {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	total := func() int {
		n := 0
		for _, w := range widths {
			n += w + 2
		}
		return n
	}
	for total() > width {
		widest := 0
		for i, w := range widths {
			if w > widths[widest] {
				widest = i
			}
		}
		if widths[widest] <= 12 {
			break
		}
		widths[widest]--
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	for _, r := range append([][]string{headers}, rows...) {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = cut(c, widths[i])
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

// width is the terminal's width: standard output's when it is a
// terminal, else COLUMNS, else 120.
func (a *app) width() int {
	if f, ok := a.rawStdout.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w >= 40 {
			return w
		}
	}
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n >= 40 {
		return n
	}
	return 120
}

// cut shortens s to n runes, ending it with "…" when cut; line breaks
// become spaces.
func cut(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:max(0, n-1)]) + "…"
}

// problemOf returns the problem details err carries, if it is Ferry's.
func problemOf(err error) *ferry.Error {
	var fe *ferry.Error
	if errors.As(err, &fe) {
		return fe
	}
	return nil
}

// fail reports err: a problem as one line ("409 out_of_stock: …", and its
// field errors) or, with --json, its problem details on stdout; any other
// error is returned for main to print.
func (a *app) fail(err error) error {
	fe := problemOf(err)
	if fe == nil {
		return err
	}
	if a.json {
		a.printJSON(fe) //nolint:errcheck // the error is what is reported
		return errReported
	}
	code := fe.Code
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(fe.Title, " ", "_"))
	}
	line := fmt.Sprintf("ferry: %d %s", fe.Status, code)
	if fe.Detail != "" {
		line += ": " + fe.Detail
	}
	fmt.Fprintln(a.stderr, sanitize(cut(line, 400)))
	for _, fer := range fe.Errors {
		fmt.Fprintln(a.stderr, sanitize(fmt.Sprintf("  %s: %s", fer.Location, fer.Message)))
	}
	return errReported
}

// since formats the time from t to now, "" for a zero t.
func since(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return duration(time.Since(t)) + " ago"
}

// duration formats d shortly: 850µs, 12.3ms, 4.2s, 3m10s, 2h5m, 3d4h.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Millisecond:
		return strconv.FormatInt(d.Microseconds(), 10) + "µs"
	case d < time.Second:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return d.Truncate(time.Second).String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Truncate(time.Minute).String(), "0s")
	default:
		days := d / (24 * time.Hour)
		return fmt.Sprintf("%dd%dh", days, (d-days*24*time.Hour)/time.Hour)
	}
}
