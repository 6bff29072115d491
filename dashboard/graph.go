package dashboard

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ferrygo/ferry"
)

// Bounds on the documents the picture is drawn from.
const (
	docTTL      = 10 * time.Second // how long a service's AsyncAPI document is kept (it gains the calls its handlers make)
	docFailTTL  = 10 * time.Second // how long a failed fetch is not tried again
	docTimeout  = 2 * time.Second
	docParallel = 4
	maxEdges    = 500
)

// Graph is the picture of the system: services and topics, and who
// publishes, consumes and calls what.
type Graph struct {
	Services []string `json:"services"`
	Topics   []string `json:"topics"`
	Edges    []Edge   `json:"edges"`
}

// Edge is an arrow of the picture. Kind "publish" goes from a service to
// a topic, "consume" from a topic to a service (Label: the consumer),
// "call" from a service to another (Label: the endpoint).
type Edge struct {
	Kind  string `json:"kind"`
	From  string `json:"from"`
	To    string `json:"to"`
	Label string `json:"label,omitempty"`
}

// asyncDoc is the part of an AsyncAPI 3 document the picture reads.
type asyncDoc struct {
	Channels map[string]struct {
		Address string `json:"address"`
	} `json:"channels"`
	Operations map[string]struct {
		Action  string `json:"action"`
		Channel struct {
			Ref string `json:"$ref"`
		} `json:"channel"`
		Reply *struct {
			Channel struct {
				Ref string `json:"$ref"`
			} `json:"channel"`
		} `json:"reply"`
		Consumer string `json:"x-ferry-consumer"`
	} `json:"operations"`
}

type cachedDoc struct {
	edges []Edge
	at    time.Time
	ok    bool
}

// docCache keeps each service's edges, read from its AsyncAPI document,
// for docTTL.
type docCache struct {
	c    *ferry.Client
	mu   sync.Mutex
	docs map[string]cachedDoc
}

func newDocCache(c *ferry.Client) *docCache { return &docCache{c: c, docs: map[string]cachedDoc{}} }

// graph draws the services, the topics and the edges of their documents,
// and of the topics' consumers that no document names.
func (d *docCache) graph(ctx context.Context, services []ServiceView, topics []ferry.TopicStats) Graph {
	g := Graph{Services: []string{}, Topics: []string{}, Edges: []Edge{}}
	for _, s := range services {
		g.Services = append(g.Services, s.Name)
	}
	d.refresh(ctx, g.Services)
	// One edge per kind and pair; a call's endpoints are joined in its
	// label, a consumer named twice (document and broker) once.
	seen := map[[3]string]int{}
	add := func(e Edge) {
		key := [3]string{e.Kind, e.From, e.To}
		if i, ok := seen[key]; ok {
			if e.Kind == "call" && e.Label != "" && !slices.Contains(strings.Split(g.Edges[i].Label, ", "), e.Label) {
				g.Edges[i].Label += ", " + e.Label
			}
			return
		}
		if len(g.Edges) < maxEdges {
			seen[key] = len(g.Edges)
			g.Edges = append(g.Edges, e)
		}
	}
	for _, t := range topics { // the broker's consumers first: their names are the subscriptions'

		for _, c := range t.Consumers {
			if c.Service != "" {
				add(Edge{Kind: "consume", From: t.Name, To: c.Service, Label: c.Consumer})
			}
		}
	}
	d.mu.Lock()
	for _, s := range g.Services {
		for _, e := range d.docs[s].edges {
			add(e)
		}
	}
	d.mu.Unlock()
	for _, e := range g.Edges {
		if e.Kind == "publish" && !slices.Contains(g.Topics, e.To) {
			g.Topics = append(g.Topics, e.To)
		}
		if e.Kind == "consume" && !slices.Contains(g.Topics, e.From) {
			g.Topics = append(g.Topics, e.From)
		}
	}
	slices.Sort(g.Topics)
	return g
}

// refresh fetches the documents of the services whose copy is stale, a
// few at a time, each within docTimeout.
func (d *docCache) refresh(ctx context.Context, services []string) {
	d.mu.Lock()
	var stale []string
	now := time.Now()
	for _, s := range services {
		cd, ok := d.docs[s]
		if !ok || cd.ok && now.Sub(cd.at) > docTTL || !cd.ok && now.Sub(cd.at) > docFailTTL {
			stale = append(stale, s)
		}
	}
	for s := range d.docs { // services gone from discovery
		if !slices.Contains(services, s) {
			delete(d.docs, s)
		}
	}
	d.mu.Unlock()
	sem := make(chan struct{}, docParallel)
	var wg sync.WaitGroup
	for _, s := range stale {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				return
			}
			fctx, cancel := context.WithTimeout(ctx, docTimeout)
			defer cancel()
			raw, err := ferry.FetchAsyncAPI(fctx, d.c, s)
			cd := cachedDoc{at: time.Now(), ok: err == nil}
			if err == nil {
				cd.edges = edgesOf(s, raw)
			} else {
				d.mu.Lock()
				cd.edges = d.docs[s].edges // the last good ones, while it fails
				d.mu.Unlock()
			}
			d.mu.Lock()
			d.docs[s] = cd
			d.mu.Unlock()
		})
	}
	wg.Wait()
}

// edgesOf reads service's edges from its AsyncAPI document: a send
// operation on a topic's channel publishes it; a receive operation
// consumes it; a send operation on, or replying to, another service's
// endpoint channel (address ferry.<service>.<endpoint>) calls it.
func edgesOf(service string, raw []byte) []Edge {
	var doc asyncDoc
	if json.Unmarshal(raw, &doc) != nil {
		return nil
	}
	channel := func(ref string) (string, string) {
		id := strings.TrimPrefix(ref, "#/channels/")
		if id == ref {
			return "", ""
		}
		id = strings.ReplaceAll(strings.ReplaceAll(id, "~1", "/"), "~0", "~")
		return id, doc.Channels[id].Address
	}
	var edges []Edge
	ids := make([]string, 0, len(doc.Operations))
	for id := range doc.Operations {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		op := doc.Operations[id]
		ch, addr := channel(op.Channel.Ref)
		if ch == "" {
			continue
		}
		if callee, endpoint, ok := endpointChannel(addr); ok {
			if op.Action == "send" && callee != service {
				edges = append(edges, Edge{Kind: "call", From: service, To: callee, Label: endpoint})
			}
			continue
		}
		if op.Reply != nil {
			if _, raddr := channel(op.Reply.Channel.Ref); raddr != "" {
				if callee, endpoint, ok := endpointChannel(raddr); ok && callee != service {
					edges = append(edges, Edge{Kind: "call", From: service, To: callee, Label: endpoint})
					continue
				}
			}
		}
		switch op.Action {
		case "send":
			edges = append(edges, Edge{Kind: "publish", From: service, To: ch})
		case "receive":
			edges = append(edges, Edge{Kind: "consume", From: ch, To: service, Label: op.Consumer})
		}
	}
	return edges
}

// endpointChannel splits an endpoint's subject, ferry.<service>.<endpoint>.
func endpointChannel(addr string) (service, endpoint string, ok bool) {
	parts := strings.Split(addr, ".")
	if len(parts) != 3 || parts[0] != "ferry" || parts[1] == "" || parts[2] == "" {
		return "", "", false
	}
	return parts[1], parts[2], true
}
