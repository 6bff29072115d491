// Command shop measures the example system (examples/shop): how long its
// binary takes from exec to ready (every service's /readyz answering 200)
// with all four services on the embedded broker, and the orders/s and
// request-to-invoiced p50/p99 of a load with all four in one process.
// The cluster and separate-process figures come from examples/shop/cluster.
//
//	go run ./bench/shop                       # 5 starts, 2,000 orders
//	go run ./bench/shop -starts 10 -orders 5000
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

func main() {
	starts := flag.Int("starts", 5, "starts to time")
	orders := flag.Int("orders", 2000, "orders of the one-process load")
	concurrency := flag.Int("concurrency", 16, "requests in flight at once")
	flag.Parse()
	if err := run(*starts, *orders, *concurrency); err != nil {
		fmt.Fprintln(os.Stderr, "bench/shop:", err)
		os.Exit(1)
	}
}

func run(starts, orders, concurrency int) error {
	dir, err := os.MkdirTemp("", "bench-shop-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "shop")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/ferrygo/ferry/examples/shop").CombinedOutput(); err != nil {
		return fmt.Errorf("build: %w\n%s", err, out)
	}
	var took []time.Duration
	for i := range starts {
		d, err := startOnce(bin, filepath.Join(dir, "data-"+strconv.Itoa(i)))
		if err != nil {
			return err
		}
		took = append(took, d)
	}
	slices.Sort(took)
	fmt.Printf("startup to ready (4 services, embedded broker, fresh store): median %s, min %s, max %s over %d starts\n",
		took[len(took)/2].Round(time.Millisecond), took[0].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond), len(took))
	cmd := exec.Command(bin, "-load", strconv.Itoa(orders), "-concurrency", strconv.Itoa(concurrency), "-addr", "127.0.0.1:0",
		"-data-dir", filepath.Join(dir, "load"), "-log-level", "error")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// startOnce starts the shop on a fresh store and returns the time until
// every service answers /readyz 200; then stops it.
func startOnce(bin, dataDir string) (time.Duration, error) {
	base := 18600
	cmd := exec.Command(bin, "-addr", "127.0.0.1:"+strconv.Itoa(base), "-data-dir", dataDir, "-log-level", "error")
	begin := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	deadline := begin.Add(30 * time.Second)
	for port := base; port < base+4; port++ {
		for {
			resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("port %d not ready after 30s", port)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return time.Since(begin), nil
}
