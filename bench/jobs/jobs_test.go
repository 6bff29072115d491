package main

import (
	"context"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRunSmall runs the command end to end with a few hundred jobs on
// Ferry, under both sync modes, and on River and asynq when their
// servers answer on their default addresses.
func TestRunSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("starts brokers")
	}
	list := []string{"ferry-interval", "ferry-always"}
	for _, c := range []struct{ name, addr string }{{"river", "127.0.0.1:5432"}, {"asynq", "127.0.0.1:6379"}} {
		conn, err := net.DialTimeout("tcp", c.addr, time.Second)
		if err != nil {
			t.Logf("%s: no server at %s: not run", c.name, c.addr)
			continue
		}
		conn.Close()
		list = append(list, c.name)
	}
	var out, errOut strings.Builder
	args := []string{"-n", "300", "-d", "20s", "-rounds", "1", "-idle-wait", "0", "-ref", "ferry-interval",
		"-pg-db", "ferry_bench_jobs_test", "-redis-db", "14", "-dir", t.TempDir(), "-contenders", strings.Join(list, ",")}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	for _, c := range list {
		if !strings.Contains(out.String(), "| "+c+" | 300 |") {
			t.Errorf("output lacks a row of 300 jobs for %s:\n%s\n%s", c, out.String(), errOut.String())
		}
	}
	// 3 of the record (queued, running, succeeded) and 3 of its index entry
	// (the open key; succeeded's key and the open key's purge). A job whose
	// open key lost its race with the job's end needs no open key (the index
	// decides again from the record and skips it): 6 at most, rarely 5.
	m := regexp.MustCompile(`\| ferry-interval \| KV revisions \| ([0-9.]+) \|`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output lacks Ferry's KV revisions per job:\n%s", out.String())
	}
	if v, _ := strconv.ParseFloat(m[1], 64); v > 6 || v < 5.9 {
		t.Errorf("Ferry wrote %v KV revisions per job; want 6 (5.9 when a few open keys lost their race):\n%s", v, out.String())
	}
}
