package broker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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
