package ferry

import (
	"net/http"
	"strings"
)

// Paths of the health endpoints every service with HTTP serves.
const (
	// HealthzPath answers 200 while the process is alive.
	HealthzPath = "/healthz"
	// ReadyzPath answers 200 while the process is ready to take work — its
	// broker connection is up, its subscriptions can pull, and it is not
	// shutting down — and 503 problem details naming what is not.
	ReadyzPath = "/readyz"
)

// serveHealthz answers that the process is alive.
func (s *Service) serveHealthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(`{"status":"ok"}`))
}

// serveReadyz answers whether the service's host is ready: every check of
// its health registry passes and it is not draining. A service no host
// runs (its Handler mounted elsewhere) is ready.
func (s *Service) serveReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	var problems []string
	if reg := s.runtime().health; reg != nil {
		for _, p := range reg.Ready() {
			problems = append(problems, p.Check+": "+p.Error)
		}
	}
	if len(problems) > 0 {
		writeProblem(w, (&Error{Status: http.StatusServiceUnavailable, Code: "not_ready",
			Detail: "not ready: " + strings.Join(problems, "; ")}).complete(requestID(r.Header.Get(HeaderRequestID))))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"status":"ready"}`))
}
