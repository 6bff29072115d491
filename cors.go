package ferry

import (
	"net/http"

	"github.com/rs/cors"
)

// corsMaxAge is how long, in seconds, a browser may cache a preflight
// answer.
const corsMaxAge = 600

// cors wraps h with CORS (github.com/rs/cors) when Config.CORSOrigins
// names origins; otherwise it returns h. Preflight requests from an
// allowed origin are answered at once (204) with the methods and the
// headers asked for; actual requests get Access-Control-Allow-Origin and
// may read the headers clients need (the request ID, Retry-After,
// WWW-Authenticate, Location). Credentials are bearer tokens and API keys
// in headers, not cookies, so Access-Control-Allow-Credentials is not
// sent. Requests from other origins are served as usual, without the CORS
// headers, so the browser keeps their answers from the page.
func (s *Service) cors(h http.Handler) http.Handler {
	origins := splitList(s.config.CORSOrigins)
	if len(origins) == 0 {
		return h
	}
	return cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		// Endpoints read headers of their own (header-tagged inputs), so
		// any header asked for is allowed: authorisation is by credentials,
		// which CORS does not replace.
		AllowedHeaders: []string{"*"},
		ExposedHeaders: []string{HeaderRequestID, "Retry-After", "Www-Authenticate", "Location"},
		MaxAge:         corsMaxAge,
	}).Handler(h)
}
