package ferry_test

import (
	"testing"

	"github.com/ferrygo/ferry/internal/reliability"
)

// Record is what one reliability suite measured (docs/reliability.md).
type Record = reliability.Record

// writeRecord writes r into $FERRY_RELIABILITY_RECORDS when it is set.
func writeRecord(t *testing.T, r Record) {
	t.Helper()
	if err := reliability.WriteAsked(r); err != nil {
		t.Fatal(err)
	}
}
