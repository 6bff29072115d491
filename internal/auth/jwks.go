package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/time/rate"
)

// Defaults of the remote key set's refresh policy.
const (
	// DefaultRefreshInterval is how old the fetched keys may grow before
	// they are fetched again (in the background, by the next token).
	DefaultRefreshInterval = time.Hour
	// DefaultMinRefreshInterval is the least time between two fetches that
	// a token with an unknown kid may cause, and between retries of a
	// failed fetch: tokens with made-up kids cannot flood the provider.
	DefaultMinRefreshInterval = 30 * time.Second
	// DefaultFetchTimeout bounds one fetch of the key set.
	DefaultFetchTimeout = 10 * time.Second
	// maxJWKSBytes bounds the key set read from the provider.
	maxJWKSBytes = 1 << 20
)

// remoteSet is the key set of a JWKS URL: fetched when first needed (or at
// start, Warm), kept in memory, fetched again in the background when older
// than the refresh interval, and at once when a token names a kid it does
// not hold — at most once per minimum interval (the first fetch does not
// count). A failed fetch keeps the keys it had and is retried after the
// minimum interval. It needs no goroutine of its own, so a service mounted
// without a host (Service.Handler) gets the same policy; a background
// fetch lives at most the fetch timeout.
//
// It is a jwkset.Storage (the memory storage it embeds, with KeyRead and
// KeyReadAll that refresh), so keyfunc resolves keys from it.
type remoteSet struct {
	*jwkset.MemoryJWKSet
	url      string
	display  string // the URL without credentials or query, for logs
	client   *http.Client
	timeout  time.Duration
	interval time.Duration
	minGap   time.Duration
	limiter  *rate.Limiter // fetches caused by unknown kids
	logger   *slog.Logger
	now      func() time.Time

	mu         sync.Mutex    // one fetch at a time
	generation atomic.Uint64 // successful fetches
	next       atomic.Int64  // unix nanoseconds: the next background fetch
	background atomic.Bool   // a background fetch is running
}

var _ jwkset.Storage = (*remoteSet)(nil)

func newRemoteSet(rawURL string, o JWTOptions) (*remoteSet, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("the JWKS URL must be an http or https URL")
	}
	display := (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	r := &remoteSet{
		MemoryJWKSet: jwkset.NewMemoryStorage(),
		url:          rawURL,
		display:      display,
		client:       o.HTTPClient,
		timeout:      orDefault(o.FetchTimeout, DefaultFetchTimeout),
		interval:     orDefault(o.RefreshInterval, DefaultRefreshInterval),
		minGap:       orDefault(o.MinRefreshInterval, DefaultMinRefreshInterval),
		logger:       o.Logger,
		now:          o.Now,
	}
	if r.client == nil {
		r.client = &http.Client{Timeout: r.timeout}
	}
	if r.logger == nil {
		r.logger = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	r.limiter = rate.NewLimiter(rate.Every(r.minGap), 1)
	return r, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// KeyRead returns the key with the given kid, fetching the set again when
// it does not hold it (rate-limited).
func (r *remoteSet) KeyRead(ctx context.Context, kid string) (jwkset.JWK, error) {
	r.refreshIfStale()
	jwk, err := r.MemoryJWKSet.KeyRead(ctx, kid)
	if !errors.Is(err, jwkset.ErrKeyNotFound) {
		return jwk, err
	}
	if r.refreshForUnknown(ctx) {
		return r.MemoryJWKSet.KeyRead(ctx, kid)
	}
	return jwk, err
}

// KeyReadAll returns every key, fetching the set first if it never was.
func (r *remoteSet) KeyReadAll(ctx context.Context) ([]jwkset.JWK, error) {
	r.refreshIfStale()
	if r.generation.Load() == 0 {
		r.refreshForUnknown(ctx)
	}
	return r.MemoryJWKSet.KeyReadAll(ctx)
}

// Warm fetches the set now, outside the rate limit: the start of a
// service, so the first token need not wait.
func (r *remoteSet) Warm(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fetch(ctx)
}

// refreshForUnknown fetches the set for a token whose kid it lacks, and
// reports whether the keys may have changed since the caller looked: a
// fetch that ran meanwhile (another caller's) counts, so callers that
// arrive together wait for one fetch instead of each being refused.
func (r *remoteSet) refreshForUnknown(ctx context.Context) bool {
	seen := r.generation.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	var spent *rate.Reservation
	switch {
	case r.generation.Load() != seen:
		return true
	case seen == 0:
		// Never fetched: fetch, unless a fetch failed less than the
		// minimum interval ago.
		if next := r.next.Load(); next != 0 && r.now().UnixNano() < next {
			return false
		}
	default:
		spent = r.limiter.ReserveN(r.now(), 1)
		if !spent.OK() || spent.DelayFrom(r.now()) > 0 {
			spent.CancelAt(r.now())
			return false
		}
	}
	err := r.fetch(ctx)
	if err != nil && ctx.Err() != nil && spent != nil {
		spent.CancelAt(r.now()) // the caller left: the fetch was not the provider's to fail
	}
	return err == nil
}

// refreshIfStale starts a background fetch when the keys are older than
// the interval and none is running.
func (r *remoteSet) refreshIfStale() {
	if next := r.next.Load(); next == 0 || r.now().UnixNano() < next {
		return
	}
	if !r.background.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.background.Store(false)
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.now().UnixNano() < r.next.Load() {
			return // another fetch ran meanwhile
		}
		_ = r.fetch(context.Background())
	}()
}

// fetch reads the set from the URL and replaces the keys; r.mu is held.
// A failure keeps the keys, is logged, and is retried after the minimum
// interval.
func (r *remoteSet) fetch(caller context.Context) error {
	ctx, cancel := context.WithTimeout(caller, r.timeout)
	defer cancel()
	err := r.get(ctx)
	if err != nil && caller.Err() != nil {
		// The caller left (a client that disconnected, a short budget):
		// not the provider's failure, so no one else is refused for it.
		return err
	}
	if err != nil {
		r.next.Store(r.now().Add(r.minGap).UnixNano())
		r.logger.WarnContext(ctx, "ferry: fetching the JWT keys failed; tokens are checked with the keys fetched before, if any, until a fetch succeeds",
			slog.String("jwks_url", r.display), slog.String("err", err.Error()), slog.Duration("retry_after", r.minGap))
		return err
	}
	r.next.Store(r.now().Add(r.interval).UnixNano())
	r.generation.Add(1)
	return nil
}

func (r *remoteSet) get(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its text repeats the URL, which may carry credentials
		}
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the JWKS URL answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return err
	}
	if len(body) > maxJWKSBytes {
		return fmt.Errorf("the JWK Set is larger than %d bytes", maxJWKSBytes)
	}
	set, err := parseJWKSet(body, false)
	if err != nil {
		return err
	}
	keys, err := set.KeyReadAll(ctx)
	if err != nil {
		return err
	}
	return r.KeyReplaceAll(ctx, keys)
}
