package natscluster

import (
	"fmt"
	"net"
)

// FreeAddr returns a loopback address (127.0.0.1:port) whose port was free
// a moment ago, for a process to listen on.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("natscluster: free address: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
