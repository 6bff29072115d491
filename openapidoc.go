package ferry

// What the OpenAPI document says of each endpoint beyond its input and
// output: every error status it can answer, with the problem schema, and
// who may call it (security schemes and per-operation requirements).

import (
	"net/http"
	"reflect"
	"slices"
	"strconv"

	"github.com/danielgtaylor/huma/v2"
)

// Names of the security schemes in the OpenAPI document.
const (
	bearerSchemeName = "bearerAuth"
	apiKeySchemeName = "apiKeyAuth"
)

// documentEndpoints documents every bound endpoint again: after the
// service's configuration changed (a host gave it its own), which decides
// the default Auth and the schemes.
func (s *Service) documentEndpoints() {
	s.auth.rules.Range(func(k, _ any) bool {
		s.documentEndpoint(k.(string))
		return true
	})
}

// documentEndpoint sets the error responses and the security requirement
// of an endpoint's operation, and the document's security schemes:
//
//   - 500, 503 (overloaded, broker gone) and 504 (deadline) always;
//   - 400, 413 and 415 when it reads a body; 422 when it has any input;
//     404 when it has path parameters (a value that names nothing);
//   - 401 when it requires credentials, 403 when it requires scopes;
//   - the statuses the endpoint declares (Endpoint.Errors);
//   - default, for any other error a handler returns.
func (s *Service) documentEndpoint(name string) {
	rec, ok := s.adapter.lookup(name)
	if !ok {
		return
	}
	op := rec.op
	decl := s.endpointSecurity(name)
	bearerOn, keysOn := s.documentedSchemes()
	required, scopes := decl.auth.requirement(s.jwtSettings() != nil || keysOn)

	hasBody := op.RequestBody != nil
	hasPath := false
	for _, p := range op.Parameters {
		if p.In == "path" {
			hasPath = true
		}
	}
	// Any operation: oversize headers, a failed downstream call (the
	// error boundary), a server failure, overload or a spent budget.
	codes := []int{http.StatusRequestHeaderFieldsTooLarge, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	if hasBody {
		codes = append(codes, http.StatusBadRequest, http.StatusRequestTimeout, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	}
	if hasBody || len(op.Parameters) > 0 {
		codes = append(codes, http.StatusUnprocessableEntity)
	}
	if hasPath {
		codes = append(codes, http.StatusNotFound)
	}
	if required {
		codes = append(codes, http.StatusUnauthorized)
	}
	if len(scopes) > 0 {
		codes = append(codes, http.StatusForbidden)
	}
	codes = append(codes, decl.errors...)
	// 401 and 403 come and go with the configuration, unless declared.
	for _, c := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		if !slices.Contains(codes, c) {
			delete(op.Responses, strconv.Itoa(c))
		}
	}
	if op.Responses == nil {
		op.Responses = map[string]*huma.Response{}
	}
	schema := s.api.OpenAPI().Components.Schemas.Schema(reflect.TypeFor[huma.ErrorModel](), true, "Error")
	problem := func(description string) *huma.Response {
		return &huma.Response{Description: description,
			Content: map[string]*huma.MediaType{"application/problem+json": {Schema: schema}}}
	}
	for _, c := range codes {
		key := strconv.Itoa(c)
		if _, ok := op.Responses[key]; !ok {
			op.Responses[key] = problem(errorDescription(c))
		}
	}
	if _, ok := op.Responses["default"]; !ok {
		op.Responses["default"] = problem("Any other error")
	}

	// Security: the schemes the service accepts, required or explicitly
	// not (an empty list) when the service verifies credentials at all.
	comps := s.api.OpenAPI().Components
	if comps.SecuritySchemes == nil {
		comps.SecuritySchemes = map[string]*huma.SecurityScheme{}
	}
	delete(comps.SecuritySchemes, bearerSchemeName)
	delete(comps.SecuritySchemes, apiKeySchemeName)
	var accepted []string
	if bearerOn {
		comps.SecuritySchemes[bearerSchemeName] = &huma.SecurityScheme{Type: "http", Scheme: "bearer", BearerFormat: "JWT",
			Description: "A JWT signed by the identity provider, in Authorization: Bearer <token>."}
		accepted = append(accepted, bearerSchemeName)
	}
	if keysOn {
		comps.SecuritySchemes[apiKeySchemeName] = &huma.SecurityScheme{Type: "apiKey", In: "header", Name: HeaderAPIKey,
			Description: "An API key, in " + HeaderAPIKey + " (or Authorization: ApiKey <key>)."}
		accepted = append(accepted, apiKeySchemeName)
	}
	switch {
	case required:
		op.Security = make([]map[string][]string, 0, len(accepted))
		for _, name := range accepted {
			op.Security = append(op.Security, map[string][]string{name: append([]string{}, scopes...)})
		}
	case len(accepted) > 0:
		op.Security = []map[string][]string{} // explicitly public
	default:
		op.Security = nil
	}
}

// documentedSchemes returns the security schemes the document shows: the
// bearer scheme when JWT keys are configured, or when nothing is but an
// endpoint requires scopes (that is what it would need); the API key
// scheme when API keys are.
func (s *Service) documentedSchemes() (bearer, apiKey bool) {
	apiKey = s.verifiesAPIKeys()
	if s.jwtSettings() != nil {
		return true, apiKey
	}
	if apiKey {
		return false, true
	}
	s.auth.rules.Range(func(_, v any) bool {
		bearer = len(v.(endpointSecurity).auth.Scopes) > 0
		return !bearer
	})
	return bearer, false
}

// errorDescription says when an endpoint answers status.
func errorDescription(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "Bad Request: the body is not valid JSON"
	case http.StatusUnauthorized:
		return "Unauthorized: credentials are missing or not valid"
	case http.StatusForbidden:
		return "Forbidden: the credentials lack a required scope"
	case http.StatusNotFound:
		return "Not Found"
	case http.StatusRequestEntityTooLarge:
		return "Content Too Large: the body exceeds the service's limit"
	case http.StatusUnsupportedMediaType:
		return "Unsupported Media Type: send Content-Type: application/json"
	case http.StatusUnprocessableEntity:
		return "Unprocessable Entity: the input fails validation"
	case http.StatusInternalServerError:
		return "Internal Server Error: the request ID identifies it in the service's logs"
	case http.StatusServiceUnavailable:
		return "Service Unavailable: overloaded, draining, or a dependency is unavailable; retry"
	case http.StatusGatewayTimeout:
		return "Gateway Timeout: the call's deadline passed"
	}
	return http.StatusText(status)
}
