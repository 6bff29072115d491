package dashboard

import (
	"bytes"
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/ferrygo/ferry"
)

//go:embed web
var webFiles embed.FS

var indexTemplate = template.Must(template.ParseFS(webFiles, "web/index.html"))

// dashboard is the handler behind [Start] and [Handler].
type dashboard struct {
	c     *ferry.Client
	log   *slog.Logger
	guard guard
	hub   *hub
	mux   *http.ServeMux
	index []byte
}

func newDashboard(c *ferry.Client, cfg Config, hosts map[string]bool) *dashboard {
	d := &dashboard{c: c, log: cfg.Logger, guard: guard{hosts: hosts, token: newToken()}, mux: http.NewServeMux()}
	b := newBuilder(c, cfg)
	d.hub = newHub(cfg.Interval, func(ctx context.Context) []byte { return marshal(b.build(ctx)) })
	var buf bytes.Buffer
	if err := indexTemplate.Execute(&buf, struct{ Token string }{d.guard.token}); err != nil {
		panic("ferry: dashboard: index template: " + err.Error())
	}
	d.index = buf.Bytes()
	static, _ := fs.Sub(webFiles, "web")
	files := http.FileServerFS(static)
	d.mux.HandleFunc("GET /{$}", d.serveIndex)
	d.mux.Handle("GET /app.js", files)
	d.mux.Handle("GET /app.css", files)
	d.mux.HandleFunc("GET /api/snapshot", d.serveSnapshot)
	d.mux.HandleFunc("GET /api/events", d.serveEvents)
	d.mux.HandleFunc("GET /api/runs/{id}/steps", d.serveSteps)
	d.mux.HandleFunc("POST /api/dead-letters/{seq}/replay", d.replayDeadLetter)
	d.mux.HandleFunc("POST /api/dead-letters/{seq}/delete", d.deleteDeadLetter)
	d.mux.HandleFunc("POST /api/dead-letters/replay-all", d.replayAll)
	d.mux.HandleFunc("POST /api/jobs/{id}/cancel", d.cancelJob)
	d.mux.HandleFunc("POST /api/jobs/{id}/retry", d.retryJob)
	return d
}

// ServeHTTP checks every request (Host, Origin, a POST's token) before
// routing it, and sets the security headers on every answer.
func (d *dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	if ref := d.guard.check(r); ref != nil {
		writeProblem(w, ref.status, ref.code, ref.detail)
		return
	}
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, 4096)
	}
	d.mux.ServeHTTP(w, r)
}

func (d *dashboard) close() { d.hub.close() }

func (d *dashboard) serveIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(d.index)
}

// serveSnapshot answers the latest snapshot: the page's fallback when its
// event stream fails.
func (d *dashboard) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	b := d.hub.current(d.hub.interval)
	if b == nil {
		writeProblem(w, http.StatusServiceUnavailable, "shutting_down", "the dashboard is shutting down")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// serveEvents streams a snapshot per refresh as Server-Sent Events until
// the browser leaves or the dashboard shuts down.
func (d *dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	ch, cancel := d.hub.subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write([]byte("retry: 3000\n\n")); err != nil {
		return
	}
	if rc.Flush() != nil {
		return
	}
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-d.hub.done():
			return
		case b, ok := <-ch:
			if !ok {
				return
			}
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout)) // not every ResponseWriter has one
			_, err = w.Write(append(append([]byte("event: snapshot\ndata: "), b...), '\n', '\n'))
		case <-keepAlive.C:
			_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			_, err = w.Write([]byte(": keep-alive\n\n"))
		}
		if err != nil || rc.Flush() != nil {
			return
		}
	}
}

// streamWriteTimeout bounds one write to a live stream: a browser that
// stops reading is dropped instead of holding its handler.
const streamWriteTimeout = 10 * time.Second

func (d *dashboard) serveSteps(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validID(id) {
		writeProblem(w, http.StatusNotFound, "run_not_found", "no such run")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), partTimeout)
	defer cancel()
	steps, err := ferry.GetRunSteps(ctx, d.c, id)
	if err != nil {
		writeError(w, d.log, "steps of run", err)
		return
	}
	if steps == nil {
		steps = []ferry.WorkflowStep{}
	}
	writeJSON(w, map[string]any{"id": id, "steps": steps})
}
