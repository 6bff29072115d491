package dashboard

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/ferrygo/ferry"
)

// TokenHeader carries the server's token on every POST; the page reads it
// from its meta element "ferry-dashboard-token".
const TokenHeader = "X-Ferry-Dashboard-Token"

// contentSecurityPolicy lets the page load its own script, style and
// data only, and nothing frame it.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// normalHost lowercases a Host value and gives it port 80 when it has
// none (what a browser omits for http).
func normalHost(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	if host, port, err := net.SplitHostPort(h); err == nil {
		return net.JoinHostPort(strings.Trim(host, "[]"), port)
	}
	return net.JoinHostPort(strings.Trim(h, "[]"), "80")
}

// guard holds what a request must match.
type guard struct {
	hosts map[string]bool // normalised Host values
	token string
}

// errRefused is a request the guard turned away; its problem is the
// answer.
type refusal struct {
	status       int
	code, detail string
}

// check reports why r is refused, or nil: its Host must be one the
// server answers to, its Origin (when present) that host's, and a POST
// must carry the token and a JSON body type.
func (g *guard) check(r *http.Request) *refusal {
	if !g.hosts[normalHost(r.Host)] {
		return &refusal{http.StatusMisdirectedRequest, "unknown_host", "this dashboard does not answer to that host name"}
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || normalHost(u.Host) != normalHost(r.Host) {
			return &refusal{http.StatusForbidden, "cross_origin", "requests from other sites are refused"}
		}
	}
	// A link from another site opens the page (a navigation); nothing else
	// from another site is answered.
	navigation := r.Method == http.MethodGet && r.Header.Get("Sec-Fetch-Mode") == "navigate"
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" && !navigation {
		return &refusal{http.StatusForbidden, "cross_origin", "requests from other sites are refused"}
	}
	if r.Method != http.MethodPost {
		return nil
	}
	got := r.Header.Get(TokenHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(g.token)) != 1 {
		return &refusal{http.StatusForbidden, "bad_token", "the dashboard's token is missing or wrong: reload the page"}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return &refusal{http.StatusUnsupportedMediaType, "not_json", "a request body must be application/json"}
	}
	return nil
}

// securityHeaders are set on every answer.
func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}

// problem is an RFC 9457 problem details body.
type problem struct {
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
	Detail string `json:"detail,omitempty"`
}

func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Title: http.StatusText(status), Status: status, Code: code, Detail: detail})
}

// writeError answers err as problem details: a Ferry *Error as it is
// (its status, code and detail), anything else as a 500 whose text goes
// only to the log.
func writeError(w http.ResponseWriter, log *slog.Logger, op string, err error) {
	var fe *ferry.Error
	if errors.As(err, &fe) && fe.Status >= 400 && fe.Status < 600 {
		title := fe.Title
		if title == "" {
			title = http.StatusText(fe.Status)
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(fe.Status)
		_ = json.NewEncoder(w).Encode(problem{Title: title, Status: fe.Status, Code: fe.Code, Detail: fe.Detail})
		return
	}
	log.Error("dashboard: "+op, "err", err)
	writeProblem(w, http.StatusInternalServerError, "internal", op+" failed; the dashboard's log says why")
}
