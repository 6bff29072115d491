// Command plain is the reference for the HTTP benchmarks in bench/: a plain
// net/http server doing the same work as examples/items (the seed's FastAPI
// service) with nothing but the standard library.
//
//	GET /items/{item_id}  waits -delay (honouring cancellation), answers {"item_id":N}
//
// A non-integer id gets a 422 application/problem+json.
//
//	go run ./bench/plain -addr 127.0.0.1:8081 -delay 1s
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
	"strconv"
	"time"
)

type item struct {
	ItemID int64 `json:"item_id"`
}

type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	delay := flag.Duration("delay", time.Second, "simulated I/O delay per request")
	flag.Parse()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /items/{item_id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("item_id"), 10, 64)
		if err != nil {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(problem{
				Title:  "Unprocessable Entity",
				Status: http.StatusUnprocessableEntity,
				Detail: "item_id: expected integer",
			})
			return
		}
		if *delay > 0 {
			t := time.NewTimer(*delay)
			select {
			case <-r.Context().Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(item{ItemID: id})
	})

	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("plain: listening on %s (delay %s)", *addr, *delay)
	log.Fatal(srv.ListenAndServe())
}
