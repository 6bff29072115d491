package main

import (
	"context"
	"net"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestRunSmall runs the command end to end with a couple of hundred runs
// on Ferry, under both sync modes, and on DBOS when PostgreSQL answers on
// its default address (under CI=true it must).
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers")
	}
	var list []string
	for _, c := range []string{"ferry-interval", "ferry-always"} {
		if _, ok := contenders[c]; ok {
			list = append(list, c)
		}
	}
	conn, err := net.DialTimeout("tcp", "127.0.0.1:5432", time.Second)
	switch {
	case err == nil:
		conn.Close()
		list = append(list, "dbos")
	case os.Getenv("CI") == "true":
		t.Fatalf("dbos: no PostgreSQL at 127.0.0.1:5432 (CI=true): %v", err)
	default:
		t.Logf("dbos: no PostgreSQL at 127.0.0.1:5432: not run")
	}
	if len(list) == 0 {
		t.Skip("no contender can run")
	}
	var out, errOut strings.Builder
	args := []string{"-n", "200", "-d", "20s", "-rounds", "1", "-idle-wait", "0", "-ref", list[0],
		"-pg-db", "ferry_bench_workflows_test", "-dir", t.TempDir(), "-contenders", strings.Join(list, ",")}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, c := range list {
		// The row: 200 runs, …, no step run more than once.
		row := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(c) + ` \| 200 \|.*\| 0 \|$`)
		if !row.MatchString(out.String()) {
			t.Errorf("output lacks a row of 200 runs and no extra step for %s:\n%s\n%s", c, out.String(), errOut.String())
		}
	}
}
