package broker

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// startTestServer runs a nats-server on a random loopback port with opts
// adjusted by configure, and returns its client URL.
func startTestServer(t *testing.T, configure func(*server.Options)) string {
	t.Helper()
	return testServer(t, configure).ClientURL()
}

// testServer runs a nats-server on a random loopback port with opts
// adjusted by configure, stopped when the test ends.
func testServer(t *testing.T, configure func(*server.Options)) *server.Server {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true, NoLog: true}
	configure(opts)
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("test server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv
}

// selfSigned makes a self-signed certificate for 127.0.0.1 and
// returns the TLS config serving it and the PEM file a client trusts.
func selfSigned(t *testing.T) (*tls.Config, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "ferry test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, caFile
}

func TestConnectTLS(t *testing.T) {
	tlsConfig, caFile := selfSigned(t)
	url := startTestServer(t, func(o *server.Options) { o.TLSConfig = tlsConfig; o.TLS = true })
	url = strings.Replace(url, "nats://", "tls://", 1)
	ctx := context.Background()

	b, err := Open(ctx, Options{URL: url, TLSCA: caFile})
	if err != nil {
		t.Fatalf("TLS with the CA: %v", err)
	}
	if !b.Conn().TLSRequired() {
		t.Error("the connection is not TLS")
	}
	_ = b.Close(ctx)

	if _, err := Open(ctx, Options{URL: url}); err == nil {
		t.Error("connected to a server whose certificate is not trusted")
	}
}

func TestConnectNKey(t *testing.T) {
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := user.PublicKey()
	seed, _ := user.Seed()
	seedFile := filepath.Join(t.TempDir(), "user.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	url := startTestServer(t, func(o *server.Options) { o.Nkeys = []*server.NkeyUser{{Nkey: pub}} })
	ctx := context.Background()

	b, err := Open(ctx, Options{URL: url, NKeyFile: seedFile})
	if err != nil {
		t.Fatalf("NKey: %v", err)
	}
	_ = b.Close(ctx)

	if _, err := Open(ctx, Options{URL: url}); err == nil || !strings.Contains(err.Error(), "FERRY_NATS_URL") {
		t.Errorf("without the NKey: %v", err)
	}
	if _, err := Open(ctx, Options{URL: url, NKeyFile: filepath.Join(t.TempDir(), "missing.nk")}); err == nil || !strings.Contains(err.Error(), "FERRY_NATS_NKEY") {
		t.Errorf("with a missing seed file: %v", err)
	}
}

// TestEmbeddedListenAuth: an embedded broker listening beyond loopback
// requires the NKey it keeps in its data directory (mode 0600, created once
// and kept across restarts). A plain connection is refused; a process on
// the same data directory joins with it; a process elsewhere connects with
// a copy of it as FERRY_NATS_NKEY. On loopback the broker stays open, as a
// development convenience.
func TestEmbeddedListenAuth(t *testing.T) {
	tests := []struct {
		listen   string
		wantAuth bool
	}{
		{"127.0.0.1:0", false},
		{"0.0.0.0:0", true},
	}
	for _, tt := range tests {
		t.Run(tt.listen, func(t *testing.T) {
			dir := t.TempDir()
			ctx := context.Background()
			keyFile := filepath.Join(dir, "broker.nkey")
			var firstSeed []byte
			for run := range 2 { // the key survives a restart
				owner, err := Open(ctx, Options{DataDir: dir, Listen: tt.listen})
				if err != nil {
					t.Fatal(err)
				}
				plain, err := nats.Connect(owner.URL())
				if err == nil {
					plain.Close()
				}
				if tt.wantAuth && !errors.Is(err, nats.ErrAuthorization) {
					t.Errorf("run %d: a connection without the data directory's key on %s: %v, want an authorization violation", run, tt.listen, err)
				}
				if !tt.wantAuth && err != nil {
					t.Errorf("run %d: loopback connection refused: %v", run, err)
				}

				joiner, err := Open(ctx, Options{DataDir: dir})
				if err != nil {
					t.Fatalf("run %d: joining with the data directory: %v", run, err)
				}
				if joiner.Conn().ConnectedServerId() != owner.Conn().ConnectedServerId() {
					t.Errorf("run %d: the joiner reached another server", run)
				}
				_ = joiner.Close(ctx)

				fi, err := os.Stat(keyFile)
				if !tt.wantAuth {
					if err == nil {
						t.Errorf("run %d: a loopback broker wrote %s", run, keyFile)
					}
					_ = owner.Close(ctx)
					continue
				}
				if err != nil {
					t.Fatalf("run %d: %v", run, err)
				}
				if fi.Mode().Perm() != 0o600 {
					t.Errorf("run %d: %s has mode %o, want 600", run, keyFile, fi.Mode().Perm())
				}
				seed, err := os.ReadFile(keyFile)
				if err != nil {
					t.Fatal(err)
				}
				if run == 0 {
					firstSeed = seed
				} else if !bytes.Equal(seed, firstSeed) {
					t.Errorf("the key changed across a restart")
				}
				// Another machine: the broker's address and a copy of the key.
				remote, err := Open(ctx, Options{URL: owner.URL(), NKeyFile: keyFile})
				if err != nil {
					t.Errorf("run %d: connecting with FERRY_NATS_NKEY: %v", run, err)
				} else {
					_ = remote.Close(ctx)
				}
				_ = owner.Close(ctx)
			}
		})
	}
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"127.0.0.1", true},
		{"127.1.2.3", true},
		{"::1", true},
		{"localhost", true},
		{"0.0.0.0", false},
		{"::", false},
		{"192.168.1.10", false},
		{"broker.example", false},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.host); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.host, got, tt.want)
		}
	}
}

func TestJoinURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://0.0.0.0:4333", "nats://127.0.0.1:4333"},
		{"nats://[::]:4333", "nats://[::1]:4333"},
		{"nats://127.0.0.1:4333", "nats://127.0.0.1:4333"},
		{"nats://192.168.1.10:4333", "nats://192.168.1.10:4333"},
	}
	for _, tt := range tests {
		if got := joinURL(tt.in); got != tt.want {
			t.Errorf("joinURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestBrokerNKeyReadableByOthers: a key file other users can read is
// refused, with the fix in the message.
func TestBrokerNKeyReadableByOthers(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes do not say who can read a file on Windows")
	}
	dir := t.TempDir()
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	keyFile := filepath.Join(dir, "broker.nkey")
	if err := os.WriteFile(keyFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(context.Background(), Options{DataDir: dir, Listen: "0.0.0.0:0"})
	if err == nil || !containsAll(err.Error(), "broker.nkey", "chmod 600", "FERRY_NATS_LISTEN") {
		t.Fatalf("Open with a key readable by others: %v", err)
	}
}
