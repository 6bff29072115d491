package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/examples/items/itemsapi"
)

// Subjects of the reference responders. The Ferry endpoint is on
// ferry.items.get-item (naming.EndpointSubject).
const (
	ferrySubject     = "ferry.items.get-item"
	rawSubject       = "bench.raw.get-item"
	rawInlineSubject = "bench.rawinline.get-item"
	rawBareSubject   = "bench.rawbare.get-item"
	queueGroup       = "q" // the group Ferry's endpoints join
)

// The headers of Ferry's request/reply protocol (internal/naming), spelled
// as Ferry writes them.
const (
	hdrPath      = "Ferry-Path"
	hdrTimeout   = "Ferry-Timeout"
	hdrStatus    = "Ferry-Status"
	hdrRequestID = "X-Request-Id"
	hdrCType     = "Content-Type"
)

// env is one broker, the Ferry items service hosted by a ferry.Host, the
// raw responders and the callers' connection; every connection is its own
// TCP connection to the broker over loopback.
type env struct {
	srv      *server.Server
	url      string
	host     *ferry.Host
	servers  []*nats.Conn // the raw responders' connections
	clientNC *nats.Conn   // the callers' connection, shared by every contender
	client   *ferry.Client
}

// start starts the broker, the Ferry service and the raw responders.
func start(ctx context.Context) (_ *env, err error) {
	e := &env{}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	// The broker: a plain nats-server on a random loopback port, without
	// JetStream (request/reply needs none), so that the Ferry host, like the
	// raw responders, reaches it over TCP. (A host that embeds the broker
	// talks to it in process, a different connection type.)
	e.srv, err = server.NewServer(&server.Options{
		ServerName: "bench-nats",
		Host:       "127.0.0.1",
		Port:       server.RANDOM_PORT,
		NoSigs:     true,
		NoLog:      true,
		MaxPayload: 8 << 20,
	})
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	e.srv.Start()
	if !e.srv.ReadyForConnections(10 * time.Second) {
		return nil, errors.New("broker: not ready after 10s")
	}
	e.url = e.srv.ClientURL()

	// Ferry: the items service, NATS only, hosted by a ferry.Host that
	// connects to the broker by URL.
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := ferry.New("items", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS(), ferry.WithLogger(quiet))
	if err != nil {
		return nil, err
	}
	ferry.Handle(svc, itemsapi.GetItem, func(_ context.Context, in *itemsapi.GetItemInput) (*itemsapi.GetItemOutput, error) {
		return &itemsapi.GetItemOutput{Body: itemsapi.Item{ItemID: in.ItemID}}, nil
	})
	// The host's settings come from the environment (FERRY_*, OTEL_*), so
	// that a variant — metrics or tracing on — is measured by setting its
	// variables: FERRY_METRICS=… go run ./bench/nats.
	cfg, err := ferry.LoadConfig(flag.NewFlagSet("ferry", flag.ContinueOnError), nil)
	if err != nil {
		return nil, err
	}
	cfg.NATSURL = e.url
	if _, set := os.LookupEnv("FERRY_LOG_LEVEL"); !set {
		cfg.LogLevel = slog.LevelError
	}
	e.host, err = ferry.NewHost(ferry.WithConfig(cfg), ferry.WithLogger(quiet))
	if err != nil {
		return nil, err
	}
	if err := e.host.Add(svc); err != nil {
		return nil, err
	}
	if err := e.host.Start(ctx); err != nil {
		return nil, err
	}

	// The raw responders, each on a connection of its own.
	for _, r := range []struct {
		subject      string
		inline, bare bool
	}{{rawSubject, false, false}, {rawInlineSubject, true, false}, {rawBareSubject, false, true}} {
		nc, err := nats.Connect(e.url, nats.Name("bench raw "+r.subject))
		if err != nil {
			return nil, err
		}
		e.servers = append(e.servers, nc)
		handle := rawRespond(r.bare)
		cb := func(m *nats.Msg) { go handle(m) } // one goroutine per call, as Ferry
		if r.inline {
			cb = handle
		}
		sub, err := nc.QueueSubscribe(r.subject, queueGroup, cb)
		if err != nil {
			return nil, err
		}
		_ = sub.SetPendingLimits(-1, 256<<20) // as Ferry's subscriptions
		if err := nc.Flush(); err != nil {
			return nil, err
		}
	}

	e.clientNC, err = nats.Connect(e.url, nats.Name("bench callers"))
	if err != nil {
		return nil, err
	}
	e.client = ferry.NewClient(e.clientNC)
	return e, nil
}

func (e *env) close() {
	if e.clientNC != nil {
		e.clientNC.Close()
	}
	for _, nc := range e.servers {
		nc.Close()
	}
	if e.host != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = e.host.Shutdown(ctx)
		cancel()
	}
	if e.srv != nil {
		e.srv.Shutdown()
		e.srv.WaitForShutdown()
	}
}

// rawRespond returns the reference responder: it reads the item ID where
// the Ferry client puts it (the form-encoded Ferry-Path header), answers
// the JSON body {"item_id":N}, and — unless bare — the reply headers Ferry
// answers (Ferry-Status, Content-Type, a fresh X-Request-Id), so the bytes
// on the wire are the same as Ferry's.
func rawRespond(bare bool) nats.MsgHandler {
	return func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		reply := &nats.Msg{}
		status := "200"
		values, err := url.ParseQuery(m.Header.Get(hdrPath))
		id := 0
		if err == nil {
			id, err = strconv.Atoi(values.Get("item_id"))
		}
		if err != nil {
			status = "422"
			reply.Data = []byte(`{"status":422}`)
		} else {
			reply.Data, _ = json.Marshal(itemsapi.Item{ItemID: id})
		}
		if !bare {
			reply.Header = nats.Header{hdrStatus: {status}, hdrCType: {"application/json"}, hdrRequestID: {newRequestID()}}
		}
		_ = m.RespondMsg(reply)
	}
}

// newRequestID makes a 16-hex-digit ID, as Ferry does for a call that
// brings none.
func newRequestID() string {
	var b [8]byte
	v := rand.Uint64()
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return hex.EncodeToString(b[:])
}

// caller makes one request/reply call for item id.
type caller func(ctx context.Context, id int) error

// contender is one way of calling, measured against the others.
type contender struct {
	name string
	note string
	call caller
}

// contenders returns the contenders in the order they run each round.
func (e *env) contenders() []contender {
	return []contender{
		{"ferry", "typed client itemsapi.GetItem.Call → Ferry endpoint (ferry.Host, Huma operation)", e.ferryCall},
		{"raw", "raw nats.go request → raw responder, one goroutine per message (the reference)", e.rawCall(rawSubject, true)},
		{"ferry-raw-client", "raw nats.go request (same message) → Ferry endpoint", e.rawCall(ferrySubject, true)},
		{"raw-inline", "raw request → raw responder answering in the subscription callback", e.rawCall(rawInlineSubject, true)},
		{"raw-bare", "raw request → raw responder whose reply has no headers", e.rawCall(rawBareSubject, false)},
	}
}

func (e *env) ferryCall(ctx context.Context, id int) error {
	out, err := itemsapi.GetItem.Call(ctx, e.client, &itemsapi.GetItemInput{ItemID: id})
	if err != nil {
		return err
	}
	if out.Body.ItemID != id {
		return fmt.Errorf("ferry: asked for item %d, got %d", id, out.Body.ItemID)
	}
	return nil
}

// rawCall returns the raw nats.go caller of subject: the message carries
// the headers the Ferry client sends (Ferry-Path, Ferry-Timeout from a
// per-call deadline of ferry.DefaultCallTimeout, as the Ferry client sets
// for a context without one); the reply's status header (when checkStatus)
// and JSON body are decoded and checked.
func (e *env) rawCall(subject string, checkStatus bool) caller {
	nc := e.clientNC
	return func(ctx context.Context, id int) error {
		ctx, cancel := context.WithTimeout(ctx, ferry.DefaultCallTimeout)
		defer cancel()
		deadline, _ := ctx.Deadline()
		m := nats.NewMsg(subject)
		m.Header.Set(hdrPath, "item_id="+strconv.Itoa(id))
		m.Header.Set(hdrTimeout, strconv.FormatInt(time.Until(deadline).Milliseconds(), 10))
		reply, err := nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return err
		}
		if checkStatus && reply.Header.Get(hdrStatus) != "200" {
			return fmt.Errorf("%s: status %q: %s", subject, reply.Header.Get(hdrStatus), reply.Data)
		}
		var item itemsapi.Item
		if err := json.Unmarshal(reply.Data, &item); err != nil {
			return fmt.Errorf("%s: %w", subject, err)
		}
		if item.ItemID != id {
			return fmt.Errorf("%s: asked for item %d, got %d", subject, id, item.ItemID)
		}
		return nil
	}
}
