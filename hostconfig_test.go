package ferry_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// TestServicesTakeTheHostsConfig: services given no configuration take the
// host's address (the first) and the following ports (the others), and its
// logger; services with their own keep theirs.
func TestServicesTakeTheHostsConfig(t *testing.T) {
	addr := ferrytest.FreeAddr(t)
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	logs := &syncBuffer{}
	h, err := ferry.NewHost(ferry.WithConfig(ferry.Config{Addr: addr}), ferry.WithLogger(newLogger(logs)))
	if err != nil {
		t.Fatal(err)
	}
	a, b := ferry.MustNew("a", "1.0.0"), ferry.MustNew("b", "1.0.0")
	own := ferry.MustNew("own", "1.0.0", ferry.WithAddr("127.0.0.1:0"), quiet)
	if err := h.Add(a, b, own); err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Shutdown(context.Background()) })
	for _, tt := range []struct {
		svc  *ferry.Service
		want string
	}{
		{a, addr},
		{b, net.JoinHostPort(host, strconv.Itoa(p+1))},
	} {
		if got := tt.svc.Addr().String(); got != tt.want {
			t.Errorf("service %s listens on %s, want %s", tt.svc.Name(), got, tt.want)
		}
	}
	if a.Logger() != b.Logger() || !strings.Contains(logs.String(), "service=a") {
		t.Errorf("services without a logger do not log with the host's:\n%s", logs)
	}
}

// TestAddressClashNamesBothServices: two services on one fixed address
// fail the start with an error that names both.
func TestAddressClashNamesBothServices(t *testing.T) {
	addr := ferrytest.FreeAddr(t)
	h, _ := ferry.NewHost(quiet)
	_ = h.Add(ferry.MustNew("left", "1.0.0", ferry.WithAddr(addr), quiet), ferry.MustNew("right", "1.0.0", ferry.WithAddr(addr), quiet))
	err := h.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "left") || !strings.Contains(err.Error(), "right") {
		t.Fatalf("Start = %v, want an error naming both services", err)
	}
}

// TestBrokerPayloadFollowsTheLargestService: a service with a body limit
// larger than its host's default takes calls that large over NATS.
func TestBrokerPayloadFollowsTheLargestService(t *testing.T) {
	cfg := ferrytest.Config(t)
	big := cfg
	big.MaxBody = 8 << 20
	svc := ferry.MustNew("uploads", "1.0.0", ferry.WithConfig(big), ferry.WithNATS(), quiet)
	ferry.Post(svc, "store", "/store", func(_ context.Context, in *UploadInput) (*UploadOutput, error) {
		out := &UploadOutput{}
		out.Body.Size = len(in.Body.Data)
		return out, nil
	})
	h := ferrytest.StartWith(t, cfg, svc)
	store := ferry.Endpoint[UploadInput, UploadOutput]{Service: "uploads", Name: "store", Method: "POST", Path: "/store"}
	in := &UploadInput{}
	in.Body.Data = strings.Repeat("x", 2<<20)
	out, err := store.Call(context.Background(), h.Client, in)
	if err != nil {
		t.Fatalf("a 2 MiB call to a service that takes 8 MiB: %v", err)
	}
	if out.Body.Size != 2<<20 {
		t.Errorf("size %d", out.Body.Size)
	}
}

// UploadInput and UploadOutput are a large body in and its size out.
type (
	UploadInput struct {
		Body struct {
			Data string `json:"data"`
		}
	}
	UploadOutput struct {
		Body struct {
			Size int `json:"size"`
		}
	}
)

// TestRunRefusesDisagreeingProcessSettings: Run builds one host, so the
// services' configurations must agree on what a process has once.
func TestRunRefusesDisagreeingProcessSettings(t *testing.T) {
	one, two := ferrytest.Config(t), ferrytest.Config(t) // two data directories
	err := ferry.Run(context.Background(), ferry.MustNew("a", "1.0.0", ferry.WithConfig(one), quiet), ferry.MustNew("b", "1.0.0", ferry.WithConfig(two), quiet))
	if err == nil || !strings.Contains(err.Error(), "FERRY_DATA_DIR") {
		t.Fatalf("Run = %v, want an error naming the setting", err)
	}
}

// TestConfigInCodeIsChecked: settings LoadConfig refuses are refused in
// code too.
func TestConfigInCodeIsChecked(t *testing.T) {
	if _, err := ferry.New("a", "1.0.0", ferry.WithConfig(ferry.Config{MaxBody: 1 << 40})); err == nil || !strings.Contains(err.Error(), "MaxBody") {
		t.Errorf("a 1 TiB body limit: %v", err)
	}
}

// TestRetryScaleMustBePositive: a zero or negative scale is refused.
func TestRetryScaleMustBePositive(t *testing.T) {
	for _, scale := range []float64{0, -1} {
		if _, err := ferry.NewHost(ferry.WithRetryScale(scale)); err == nil {
			t.Errorf("WithRetryScale(%v) accepted", scale)
		}
	}
}
