package reliability

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Begin and End mark the generated table in docs/reliability.md; what is
// between them is replaced by [Render].
const (
	Begin = "<!-- records:begin -->"
	End   = "<!-- records:end -->"
)

// header is the table's head: one column per field a reader compares.
const header = "| scenario | fault | runs | seed | acknowledged | found | lost | extra runs | figures | reproduce |\n" +
	"|---|---|--:|--:|--:|--:|--:|--:|---|---|\n"

// Table renders records as a Markdown table, one row each, in the order
// given ([Read] sorts them by scenario).
func Table(records []Record) string {
	var b strings.Builder
	b.WriteString(header)
	for _, r := range records {
		seed := "—"
		if r.Seed != 0 {
			seed = strconv.FormatInt(r.Seed, 10)
		}
		command := "—"
		if r.Command != "" {
			command = "`" + strings.ReplaceAll(r.Command, "`", "'") + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %d | %d | %d | %d | %s | %s |\n",
			cell(r.Scenario), cell(r.Fault), r.Runs, seed, r.Acknowledged, r.Found, r.Lost, r.Duplicates,
			cell(figures(r.Figures)), cell(command))
	}
	return b.String()
}

// figures renders a record's figures as "name: value" pairs, by name.
func figures(f map[string]string) string {
	if len(f) == 0 {
		return "—"
	}
	names := make([]string, 0, len(f))
	for name := range f {
		names = append(names, name)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = name + ": " + f[name]
	}
	return strings.Join(parts, ", ")
}

// cell makes s safe in a table cell: one line, pipes escaped.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// Render returns doc with the text between its [Begin] and [End] markers
// replaced by the table of records.
func Render(doc string, records []Record) (string, error) {
	begin := strings.Index(doc, Begin)
	end := strings.Index(doc, End)
	if begin < 0 || end < begin {
		return "", ErrNoMarkers
	}
	return doc[:begin+len(Begin)] + "\n" + Table(records) + doc[end:], nil
}
