package broker

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
)

// fakeServer accepts NATS clients on a loopback port, announcing itself as
// nats-server version with the given server ID and answering PINGs: enough
// for a client to connect, so checks made at connect time can be tested
// against servers that are not linked into this module.
func fakeServer(t *testing.T, version, serverID string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				fmt.Fprintf(c, "INFO {\"server_id\":%q,\"version\":%q,\"proto\":1,\"headers\":true,\"max_payload\":1048576}\r\n", serverID, version)
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(line, "PING") {
						_, _ = c.Write([]byte("PONG\r\n"))
					}
				}
			}()
		}
	}()
	return "nats://" + ln.Addr().String()
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
