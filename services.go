package ferry

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// ServiceInstance is one running instance of a service as it answers the
// NATS service protocol ($SRV.INFO and $SRV.STATS): any service that
// speaks it, Ferry's or not, is listed.
type ServiceInstance struct {
	// Name, ID (the instance's), Version and Description identify it.
	Name        string `json:"name"`
	ID          string `json:"id"`
	Version     string `json:"version"`
	Description string `json:"description,omitempty"`
	// Metadata is the instance's metadata: a Ferry service's "http"
	// address and the "jobs" kinds it runs.
	Metadata map[string]string `json:"metadata,omitempty"`
	// Started is when the instance started answering.
	Started time.Time `json:"started"`
	// Endpoints are its endpoints, in the order it declares them.
	Endpoints []EndpointStats `json:"endpoints"`
}

// EndpointStats is one endpoint of a [ServiceInstance] and its figures.
type EndpointStats struct {
	// Name and Subject are the endpoint's; Metadata a Ferry endpoint's
	// HTTP "method" and "path".
	Name     string            `json:"name"`
	Subject  string            `json:"subject"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Requests and Errors count the NATS requests since the instance
	// started, AverageProcessing their mean time, LastError the last
	// error's text.
	Requests          int           `json:"requests"`
	Errors            int           `json:"errors"`
	AverageProcessing time.Duration `json:"average_processing"`
	LastError         string        `json:"last_error,omitempty"`
	// Recent is the last minute's rate and latency per transport; nil for
	// a service that does not report it (not Ferry's, or its metrics off).
	Recent *RecentStats `json:"recent,omitempty"`
}

// RecentStats is an endpoint's recent traffic, per transport.
type RecentStats struct {
	// Window is the time the figures cover.
	Window time.Duration `json:"window"`
	HTTP   LatencyStats  `json:"http"`
	NATS   LatencyStats  `json:"nats"`
}

// LatencyStats is a transport's requests in a [RecentStats] window.
type LatencyStats struct {
	// Requests and Errors count the requests, and the server-side
	// failures among them; Rate is requests per second.
	Requests uint64  `json:"requests"`
	Errors   uint64  `json:"errors"`
	Rate     float64 `json:"rate"`
	// P50 and P99 are the median and 99th percentile latency (within
	// 6.25 %); 0 without requests.
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
}

// DefaultDiscoveryWait is how long [ListServices] waits for answers when
// its context has no earlier deadline.
const DefaultDiscoveryWait = time.Second

// Bounds on what one listing keeps of the discovery answers, which anyone
// on the broker may send, as many as it likes.
const (
	maxDiscoveryAnswer = 1 << 20  // bytes of one answer
	maxDiscoveryBytes  = 16 << 20 // bytes of every answer of one request
	maxInstanceText    = 1 << 10  // bytes of a description or metadata value
	maxInstanceFields  = 512      // endpoints, and metadata entries, of one instance
)

// discoveryQuiet ends the wait for answers early: once an answer came,
// this long without another means every instance has answered.
const discoveryQuiet = 250 * time.Millisecond

// ListServices asks every service instance reachable through c's broker
// for its description and statistics, and returns them sorted by name
// and instance ID. It waits for answers until DefaultDiscoveryWait passes,
// ctx ends, or no new answer came for a quarter of a second after the
// last; an instance that answers later is not listed. No instance is an
// empty list, not an error; a broker that cannot be reached is an error.
func ListServices(ctx context.Context, c *Client) ([]ServiceInstance, error) {
	if c == nil || c.nc == nil {
		return nil, fmt.Errorf("ferry: list services: %w", errNoClient)
	}
	if fe := c.unavailable(); fe != nil {
		return nil, fe
	}
	var stats [][]byte
	var statsErr error
	done := make(chan struct{})
	go func() { // both rounds at once: each waits for its quiet quarter second
		defer close(done)
		stats, statsErr = gather(ctx, c.nc, "$SRV.STATS")
	}()
	infos, err := gather(ctx, c.nc, "$SRV.INFO")
	<-done
	if err = cmp.Or(err, statsErr); err != nil {
		return nil, err
	}
	return decodeInstances(infos, stats), nil
}

// decodeInstances joins the INFO and STATS answers of the instances,
// sorted by name and instance ID; answers that are not a service's are
// ignored.
func decodeInstances(infos, stats [][]byte) []ServiceInstance {
	byID := make(map[string]micro.Stats, len(stats))
	for _, raw := range stats {
		var st micro.Stats
		if json.Unmarshal(raw, &st) == nil && st.ID != "" {
			byID[st.ID] = st
		}
	}
	out := make([]ServiceInstance, 0, len(infos))
	seen := make(map[string]bool, len(infos))
	for _, raw := range infos {
		var info micro.Info
		if json.Unmarshal(raw, &info) != nil || info.ID == "" || info.Type != micro.InfoResponseType || seen[info.ID] {
			continue // not a service's answer, or an instance's second
		}
		seen[info.ID] = true
		out = append(out, instanceOf(info, byID[info.ID]))
	}
	slices.SortFunc(out, func(a, b ServiceInstance) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// instanceOf joins an instance's INFO and STATS answers.
func instanceOf(info micro.Info, st micro.Stats) ServiceInstance {
	si := ServiceInstance{Name: limitText(info.Name), ID: limitText(info.ID), Version: limitText(info.Version),
		Description: limitText(info.Description), Metadata: limitMetadata(info.Metadata), Started: st.Started}
	if len(info.Endpoints) > maxInstanceFields {
		info.Endpoints = info.Endpoints[:maxInstanceFields]
	}
	si.Endpoints = make([]EndpointStats, 0, len(info.Endpoints))
	stats := make(map[string]*micro.EndpointStats, len(st.Endpoints))
	for _, es := range st.Endpoints {
		if es != nil {
			stats[es.Name] = es
		}
	}
	for _, ep := range info.Endpoints {
		es := EndpointStats{Name: limitText(ep.Name), Subject: limitText(ep.Subject), Metadata: limitMetadata(ep.Metadata)}
		if s := stats[ep.Name]; s != nil {
			es.Requests, es.Errors, es.AverageProcessing, es.LastError = s.NumRequests, s.NumErrors, s.AverageProcessingTime, limitText(s.LastError)
			if len(s.Data) > 0 && string(s.Data) != "null" {
				var recent RecentStats
				if json.Unmarshal(s.Data, &recent) == nil && recent.Window > 0 {
					es.Recent = &recent
				}
			}
		}
		si.Endpoints = append(si.Endpoints, es)
	}
	return si
}

// gather sends one request on subject and collects the answers of every
// responder until the wait ends (see ListServices).
func gather(ctx context.Context, nc *nats.Conn, subject string) ([][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultDiscoveryWait)
	defer cancel()
	inbox := nc.NewRespInbox()
	ch := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, fmt.Errorf("ferry: list services: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // the inbox is ours alone
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, fmt.Errorf("ferry: list services: %w", err)
	}
	if err := nc.FlushWithContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("ferry: list services: %w", err)
	}
	var answers [][]byte
	kept := 0
	quiet := time.NewTimer(DefaultDiscoveryWait)
	defer quiet.Stop()
	for {
		select {
		case m := <-ch:
			data := bytes.TrimSpace(m.Data)
			if len(data) == 0 || len(data) > maxDiscoveryAnswer || data[0] != '{' {
				continue // not a service's answer
			}
			if kept+len(data) > maxDiscoveryBytes {
				return answers, nil // enough: what a flood sends past it is dropped
			}
			kept += len(data)
			answers = append(answers, data)
			quiet.Reset(discoveryQuiet)
		case <-quiet.C:
			return answers, nil
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return answers, nil
			}
			return nil, ctx.Err()
		}
	}
}

// limitText cuts a text from a discovery answer to maxInstanceText bytes,
// at a character's start.
func limitText(s string) string {
	if len(s) <= maxInstanceText {
		return s
	}
	cut := maxInstanceText
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// limitMetadata keeps at most maxInstanceFields entries of a discovery
// answer's metadata, their texts cut.
func limitMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return m
	}
	out := make(map[string]string, min(len(m), maxInstanceFields))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if len(out) == maxInstanceFields {
			break
		}
		out[limitText(k)] = limitText(m[k])
	}
	return out
}
