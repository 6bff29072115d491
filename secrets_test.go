package ferry_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nkeys"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// Contracts of the vault service the secrets test calls.
var (
	vaultWhoami = ferry.Endpoint[Empty, PrincipalSeen]{Service: "vault", Name: "whoami", Method: http.MethodGet, Path: "/whoami"}
	vaultFail   = ferry.Endpoint[Empty, Empty]{Service: "vault", Name: "fail", Method: http.MethodGet, Path: "/fail"}
	vaultPanic  = ferry.Endpoint[Empty, Empty]{Service: "vault", Name: "panic", Method: http.MethodGet, Path: "/panic"}
)

// TestSecretsNeverLogged: a service that verifies JWTs and API keys, with
// every log line captured at debug level and the access log on, is sent
// bad, expired and valid tokens and wrong and valid API keys over HTTP
// and NATS, to endpoints that succeed, fail with an error that wraps the
// caller's credentials, and panic with them; hosts are pointed at an
// unreachable broker with a password in the URL and a credentials file.
// No log line, response body or returned error may contain a secret.
func TestSecretsNeverLogged(t *testing.T) {
	keys := rsaKeys()
	dir := t.TempDir()
	pub, err := x509.MarshalPKIXPublicKey(&keys[0].PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "jwt.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		t.Fatal(err)
	}
	const apiKey, wrongKey = "sk_live_5ecret0f7he4p1ke9a8b7c6d5e4f3a2b", "sk_live_wr0ngkey00000000000000000000000"
	apiKeys := writeKeys(t, "billing "+ferry.HashAPIKey(apiKey)+" vault:read\n")
	valid := signToken(t, jwt.SigningMethodRS256, keys[0], "", nil)
	expired := signToken(t, jwt.SigningMethodRS256, keys[0], "", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()})
	forged := signToken(t, jwt.SigningMethodRS256, keys[1], "", nil)
	wrongAud := signToken(t, jwt.SigningMethodRS256, keys[0], "", map[string]any{"aud": "another-app"})
	// The signatures are what makes each token a secret: a log that kept
	// a token's claims but not its signature would leak nothing usable.
	secrets := map[string]string{"valid token": valid, "expired token": expired, "forged token": forged,
		"token for another audience": wrongAud, "API key": apiKey, "wrong API key": wrongKey}
	for _, tok := range []string{valid, expired, forged, wrongAud} {
		secrets["signature of "+tok[:12]] = tok[strings.LastIndexByte(tok, '.')+1:]
	}

	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := ferrytest.Config(t)
	cfg.JWTKeyFile, cfg.JWTIssuer, cfg.JWTAudience, cfg.APIKeysFile = keyFile, testIssuer, testAudience, apiKeys
	cfg.AccessLog, cfg.LogLevel = true, slog.LevelDebug
	svc := ferry.MustNew("vault", "1.0.0", ferry.WithConfig(cfg), ferry.WithNATS(), ferry.WithLogger(logger))
	credentials := func(ctx context.Context) string {
		r := ferry.RequestFromContext(ctx)
		return r.Header("Authorization") + r.Header("X-API-Key")
	}
	ferry.Handle(svc, vaultWhoami, func(ctx context.Context, _ *Empty) (*PrincipalSeen, error) { return whoami(ctx), nil })
	ferry.Handle(svc, vaultFail, func(ctx context.Context, _ *Empty) (*Empty, error) {
		return nil, fmt.Errorf("backend refused credentials %q: %w", credentials(ctx), errors.New("connection reset"))
	})
	ferry.Handle(svc, vaultPanic, func(ctx context.Context, _ *Empty) (*Empty, error) {
		panic("cannot use " + credentials(ctx))
	})
	h := ferrytest.StartWith(t, cfg, svc)
	base := ferrytest.URL(t, svc)

	var seen []string // every body and error the callers got
	headers := []http.Header{
		{},
		{"Authorization": {"Bearer " + valid}},
		{"Authorization": {"Bearer " + expired}},
		{"Authorization": {"Bearer " + forged}},
		{"Authorization": {"Bearer " + wrongAud}},
		{"Authorization": {"Bearer " + valid + "x"}},
		{"Authorization": {"Basic " + valid}},
		{"Authorization": {"ApiKey " + wrongKey}},
		{"X-API-Key": {apiKey}},
		{"X-API-Key": {wrongKey}},
	}
	ctx := context.Background()
	for _, hd := range headers {
		for _, ep := range []string{"/whoami", "/fail", "/panic"} {
			status, respHeader, body := callHTTP(t, base, http.MethodGet, ep, "", hd)
			seen = append(seen, fmt.Sprintf("HTTP %s %d %v %s", ep, status, respHeader, body))
		}
		var opts []ferry.CallOption
		for name, vs := range hd {
			opts = append(opts, ferry.CallHeader(name, vs[0]))
		}
		_, err := vaultWhoami.Call(ctx, h.Client, nil, opts...)
		seen = append(seen, fmt.Sprintf("NATS whoami: %+v", err))
		_, err = vaultFail.Call(ctx, h.Client, nil, opts...)
		seen = append(seen, fmt.Sprintf("NATS fail: %+v", err))
		_, err = vaultPanic.Call(ctx, h.Client, nil, opts...)
		seen = append(seen, fmt.Sprintf("NATS panic: %+v", err))
	}

	// Hosts that cannot reach their broker: a password in the URL, a
	// credentials file, an NKey seed file.
	const natsPassword = "n4ts-p4ssw0rd-do-not-log"
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	secrets["NATS password"], secrets["NKey seed"] = natsPassword, string(seed)
	credsFile, nkeyFile := filepath.Join(dir, "user.creds"), filepath.Join(dir, "user.nk")
	creds := "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.c2ln\n------END NATS USER JWT------\n\n" +
		"-----BEGIN USER NKEY SEED-----\n" + string(seed) + "\n------END USER NKEY SEED------\n"
	if err := os.WriteFile(credsFile, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nkeyFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	closed := ferrytest.FreeAddr(t)
	for _, broker := range []ferry.Config{
		{NATSURL: "nats://ferry:" + natsPassword + "@" + closed + ",nats://other:" + natsPassword + "@" + closed},
		{NATSURL: "nats://" + closed, NATSCreds: credsFile},
		{NATSURL: "nats://" + closed, NATSNKey: nkeyFile},
		{NATSURL: "tls://" + natsPassword + "@" + closed},
	} {
		broker.Addr, broker.LogLevel = "127.0.0.1:0", slog.LevelDebug
		bh, err := ferry.NewHost(ferry.WithConfig(broker), ferry.WithLogger(logger))
		if err != nil {
			seen = append(seen, "NewHost: "+err.Error())
			continue
		}
		_ = bh.Add(ferry.MustNew("vault-client", "1.0.0", ferry.WithoutHTTP(), ferry.WithLogger(logger)))
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = bh.Start(sctx)
		cancel()
		if err == nil {
			t.Fatalf("a host started without a reachable broker (%s)", broker.NATSURL)
		}
		seen = append(seen, "Start: "+err.Error())
	}

	for what, secret := range secrets {
		for _, s := range seen {
			if strings.Contains(s, secret) {
				t.Errorf("the %s reached a caller: %s", what, s)
			}
		}
		for line := range strings.Lines(logs.String()) {
			if strings.Contains(line, secret) {
				t.Errorf("the %s is in the log: %s", what, line)
			}
		}
	}
	if !strings.Contains(logs.String(), "handler failed") || !strings.Contains(logs.String(), "panicked") {
		t.Errorf("the failures were not logged at all:\n%s", logs.String())
	}
}

// forwardedTokenJob is the job TestForwardedTokenNotStoredInJobs enqueues.
var forwardedTokenJob = ferry.Job[ReportRequest, RenderedReport]{Name: "forwarded-token", Description: "Sees which credentials reach a job."}

// TestForwardedTokenNotStoredInJobs: a gateway forwards its caller's token
// on every outgoing message (a client middleware, as docs/security.md
// shows) and enqueues a job from a handler. The job's message is stored
// without the token, so no attempt — the first or a retry long after the
// token expired — runs with it: the job's handler sees no credentials.
func TestForwardedTokenNotStoredInJobs(t *testing.T) {
	forward := func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, m *ferry.OutgoingMessage) error {
			if r := ferry.RequestFromContext(ctx); r != nil && r.Header("Authorization") != "" {
				m.Header.Set("Authorization", r.Header("Authorization")) // on every kind, jobs included
			}
			return next(ctx, m)
		}
	}
	seen := make(chan string, 3)
	worker := ferry.MustNew("reports", "1.0.0", quiet, ferry.WithoutHTTP())
	ferry.HandleJob(worker, forwardedTokenJob, func(ctx context.Context, _ *ReportRequest, p *ferry.Progress) (*RenderedReport, error) {
		seen <- ferry.RequestFromContext(ctx).Header("Authorization")
		if len(seen) < 2 {
			return nil, errors.New("the first attempt fails, so a retry runs")
		}
		return &RenderedReport{URL: "ok"}, nil
	}, append(fastJobs, ferry.JobMaxAttempts(3))...)
	gateway := ferry.MustNew("gateway", "1.0.0", quiet, ferry.WithNATS(), ferry.WithClientMiddleware(forward))
	ferry.Post(gateway, "report", "/report", func(ctx context.Context, _ *Empty) (*Empty, error) {
		_, err := forwardedTokenJob.Enqueue(ctx, gateway.Client(), &ReportRequest{Name: "q3"})
		return &Empty{}, err
	})
	ferrytest.Start(t, gateway, worker)
	const token = "Bearer user-token-that-expires-soon"
	if status, _, body := callHTTP(t, ferrytest.URL(t, gateway), http.MethodPost, "/report", "", http.Header{"Authorization": {token}}); status >= 300 {
		t.Fatalf("enqueue: %d %s", status, body)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		select {
		case got := <-seen:
			if got != "" {
				t.Errorf("attempt %d of the job ran with the caller's credentials: %q", attempt, got)
			}
		case <-time.After(ferrytest.DefaultWait):
			t.Fatalf("attempt %d of the job did not run", attempt)
		}
	}
}
