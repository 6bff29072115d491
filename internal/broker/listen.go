package broker

import (
	"net"
	"net/url"
)

// isLoopback reports whether host, a listen address's host, is reachable
// from this machine only.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// joinURL is the URL processes on this machine use for a server whose
// client URL is u: the loopback address when it listens on all of them.
func joinURL(u string) string {
	parsed, err := url.Parse(u)
	if err != nil {
		return u
	}
	switch ip := net.ParseIP(parsed.Hostname()); {
	case ip == nil || !ip.IsUnspecified():
		return u
	case ip.To4() != nil:
		parsed.Host = net.JoinHostPort("127.0.0.1", parsed.Port())
	default:
		parsed.Host = net.JoinHostPort("::1", parsed.Port())
	}
	return parsed.String()
}
