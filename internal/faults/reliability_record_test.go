package faults_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ferrygo/ferry/internal/reliability"
)

// Record is what one fault scenario measured.
type Record = reliability.Record

// writeRecord writes r into $FERRY_RELIABILITY_RECORDS when it is set.
func writeRecord(t *testing.T, r Record) {
	t.Helper()
	if err := reliability.WriteAsked(r); err != nil {
		t.Fatal(err)
	}
}

// countsText writes counts by HTTP status as "503 × 40, 504 × 1".
func countsText(counts map[int]int) string {
	parts := make([]string, 0, len(counts))
	for _, status := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%d × %d", status, counts[status]))
	}
	return strings.Join(parts, ", ")
}
