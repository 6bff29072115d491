// Command report regenerates the table of fault and bad-input runs in
// docs/reliability.md from the records in docs/reliability/records:
//
//	go run ./internal/reliability/cmd/report [-records docs/reliability/records] [-doc docs/reliability.md]
//
// It replaces what is between the markers <!-- records:begin --> and
// <!-- records:end --> and leaves the rest of the document as it is.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/ferrygo/ferry/internal/reliability"
)

func main() {
	records := flag.String("records", "docs/reliability/records", "the directory of records (*.json)")
	doc := flag.String("doc", "docs/reliability.md", "the document whose table to regenerate")
	flag.Parse()
	if err := run(*records, *doc); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(recordsDir, docPath string) error {
	records, err := reliability.Read(recordsDir)
	if err != nil {
		return err
	}
	old, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	doc, err := reliability.Render(string(old), records)
	if err != nil {
		return fmt.Errorf("%s: %w", docPath, err)
	}
	if doc == string(old) {
		fmt.Printf("%s: the table of %d records is up to date\n", docPath, len(records))
		return nil
	}
	if err := os.WriteFile(docPath, []byte(doc), 0o644); err != nil {
		return err
	}
	fmt.Printf("%s: the table now shows %d records\n", docPath, len(records))
	return nil
}
