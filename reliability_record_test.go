package ferry_test

import (
	"os"
	"testing"

	"github.com/ferrygo/ferry/internal/reliability"
)

// Record is what one reliability suite measured (docs/reliability.md).
type Record = reliability.Record

// writeRecord writes r into $FERRY_RELIABILITY_RECORDS when it is set,
// and nothing otherwise.
func writeRecord(t *testing.T, r Record) {
	t.Helper()
	dir := os.Getenv(reliability.RecordsEnv)
	if dir == "" {
		return
	}
	if err := reliability.Write(dir, r); err != nil {
		t.Fatal(err)
	}
}
