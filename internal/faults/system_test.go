package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/ferrytest"
)

// optIn skips a fault run unless FERRY_CLUSTER_TESTS=1.
func optIn(t *testing.T) {
	t.Helper()
	if os.Getenv("FERRY_CLUSTER_TESTS") != "1" {
		t.Skip("starts nats-server processes and faults them for ~20 s: set FERRY_CLUSTER_TESTS=1 to run it")
	}
}

// The system under fault: a gateway whose HTTP endpoint places an order by
// calling stock over NATS, publishing orders.placed and enqueueing an
// invoice job; shipping consumes the event; a worker runs the job. An
// order the gateway answered 200 for is acknowledged: its reservation,
// its event's delivery and its job's run must all be found afterwards.

type placeIn struct {
	ID string `path:"id"`
}

type placeOut struct {
	Body struct {
		ID string `json:"id"`
	}
}

// placeTimeout bounds the place endpoint: an answer that takes about this
// long waited out the broker instead of failing fast.
const placeTimeout = 5 * time.Second

var place = ferry.Endpoint[placeIn, placeOut]{
	Service: "gateway", Name: "place", Method: http.MethodPost, Path: "/orders/{id}", Timeout: placeTimeout,
}

type reserveIn struct {
	Body struct {
		ID string `json:"id"`
	}
}

type reserveOut struct {
	Body struct {
		ID string `json:"id"`
	}
}

var reserve = ferry.Endpoint[reserveIn, reserveOut]{
	Service: "stock", Name: "reserve", Method: http.MethodPost, Path: "/reserve", NATSOnly: true,
}

type orderPlaced struct {
	ID string `json:"id"`
}

var placed = ferry.Topic[orderPlaced]{Name: "faults-placed", Subject: "faults.placed"}

type invoiceIn struct {
	ID string `json:"id"`
}

type invoiceOut struct {
	ID string `json:"id"`
}

var invoice = ferry.Job[invoiceIn, invoiceOut]{Name: "faults-invoice"}

// tally counts how often each ID was seen.
type tally struct {
	mu   sync.Mutex
	seen map[string]int
	at   []time.Time // when each first sighting happened
}

func (t *tally) add(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[string]int{}
	}
	t.seen[id]++
	if t.seen[id] == 1 {
		t.at = append(t.at, time.Now())
	}
}

func (t *tally) count(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seen[id]
}

// system is the services' handlers' view of what they did.
type system struct {
	reserved, shipped, invoiced tally
}

// services builds the gateway (HTTP on a free port) and the back end
// (stock, shipping, the invoice worker) of sys.
func (sys *system) services() (gateway, backend []*ferry.Service) {
	gw := ferry.MustNew("gateway", "1.0.0", ferry.WithAddr("127.0.0.1:0"))
	pub := ferry.NewPublisher(gw, placed)
	ferry.Handle(gw, place, func(ctx context.Context, in *placeIn) (*placeOut, error) {
		r := &reserveIn{}
		r.Body.ID = in.ID
		if _, err := reserve.Call(ctx, gw.Client(), r); err != nil {
			return nil, err
		}
		if _, err := pub.Publish(ctx, &orderPlaced{ID: in.ID}, ferry.PublishMessageID("placed-"+in.ID)); err != nil {
			return nil, err
		}
		if _, err := invoice.Enqueue(ctx, gw.Client(), &invoiceIn{ID: in.ID}, ferry.EnqueueKey("invoice-"+in.ID, time.Hour)); err != nil {
			return nil, err
		}
		out := &placeOut{}
		out.Body.ID = in.ID
		return out, nil
	})

	stock := ferry.MustNew("stock", "1.0.0", ferry.WithoutHTTP(), ferry.WithNATS())
	ferry.Handle(stock, reserve, func(_ context.Context, in *reserveIn) (*reserveOut, error) {
		sys.reserved.add(in.Body.ID)
		out := &reserveOut{}
		out.Body.ID = in.Body.ID
		return out, nil
	})
	shipping := ferry.MustNew("shipping", "1.0.0", ferry.WithoutHTTP())
	ferry.Subscribe(shipping, placed, "ship", func(_ context.Context, e *orderPlaced) error {
		sys.shipped.add(e.ID)
		return nil
	}, ferry.SubscribeAckWait(3*time.Second))
	billing := ferry.MustNew("billing", "1.0.0", ferry.WithoutHTTP())
	ferry.HandleJob(billing, invoice, func(_ context.Context, in *invoiceIn, _ *ferry.Progress) (*invoiceOut, error) {
		sys.invoiced.add(in.ID)
		return &invoiceOut{ID: in.ID}, nil
	}, ferry.JobAckWait(3*time.Second))
	return []*ferry.Service{gw}, []*ferry.Service{stock, shipping, billing}
}

// start starts the system's two hosts (each with its own broker
// connection) against the broker at url with the given stream replicas,
// and returns the gateway's base URL and the hosts.
func (sys *system) start(t *testing.T, url string, replicas int) (string, []*ferrytest.Host) {
	t.Helper()
	gateway, backend := sys.services()
	cfg := ferrytest.Config(t)
	cfg.NATSURL, cfg.NATSEmbed, cfg.StreamReplicas = url, false, replicas
	back := ferrytest.StartWith(t, cfg, backend...)
	front := ferrytest.StartWith(t, cfg, gateway...)
	return ferrytest.URL(t, gateway[0]), []*ferrytest.Host{front, back}
}

// outcome is one answer of the gateway to the driver.
type outcome struct {
	id       string
	status   int // 0: no answer (transport error)
	sent     time.Time
	took     time.Duration
	code     string // problem details' code, when not 200
	problemJ bool   // answered application/problem+json
}

// driver places orders on the gateway from several goroutines until
// stopped, keeping every outcome; besides them, a probe places one order
// every 100 ms on a goroutine of its own, so answers are seen all along
// even while every worker waits on a slow one.
type driver struct {
	base   string
	client *http.Client
	mu     sync.Mutex
	out    []outcome
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startDriver(base string, workers int) *driver {
	d := &driver{base: base, client: &http.Client{Timeout: 20 * time.Second}, stop: make(chan struct{})}
	for w := range workers {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-d.stop:
					return
				default:
				}
				o := d.place(fmt.Sprintf("w%d-%d", w, i))
				d.mu.Lock()
				d.out = append(d.out, o)
				d.mu.Unlock()
				if o.status != http.StatusOK {
					time.Sleep(20 * time.Millisecond) // a client's pause before the next try
				}
			}
		}()
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-d.stop:
				return
			case <-tick.C:
			}
			d.wg.Add(1)
			go func() {
				defer d.wg.Done()
				o := d.place(fmt.Sprintf("probe-%d", i))
				d.mu.Lock()
				d.out = append(d.out, o)
				d.mu.Unlock()
			}()
		}
	}()
	return d
}

// place posts one order.
func (d *driver) place(id string) outcome {
	o := outcome{id: id, sent: time.Now()}
	resp, err := d.client.Post(d.base+"/orders/"+id, "application/json", nil)
	o.took = time.Since(o.sent)
	if err != nil {
		return o
	}
	defer resp.Body.Close()
	o.status = resp.StatusCode
	o.problemJ = resp.Header.Get("Content-Type") == "application/problem+json"
	if o.status != http.StatusOK {
		var p struct {
			Code string `json:"code"`
		}
		_ = decodeJSON(resp, &p)
		o.code = p.Code
	}
	return o
}

// finish stops the driver and returns its outcomes in the order sent.
func (d *driver) finish() []outcome {
	close(d.stop)
	d.wg.Wait()
	sort.Slice(d.out, func(i, j int) bool { return d.out[i].sent.Before(d.out[j].sent) })
	return d.out
}

// acked returns the outcomes the gateway answered 200, and when the
// answers came.
func acked(outs []outcome) (ids []string, at []time.Time) {
	for _, o := range outs {
		if o.status == http.StatusOK {
			ids = append(ids, o.id)
			at = append(at, o.sent.Add(o.took))
		}
	}
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	return ids, at
}

// verify waits until every acknowledged order's reservation, event and
// job are found (at most wait), and counts them.
func (sys *system) verify(ids []string, wait time.Duration) (found, lost, dups int) {
	complete := func(id string) bool {
		return sys.reserved.count(id) > 0 && sys.shipped.count(id) > 0 && sys.invoiced.count(id) > 0
	}
	deadline := time.Now().Add(wait)
	for {
		found = 0
		for _, id := range ids {
			if complete(id) {
				found++
			}
		}
		if found == len(ids) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range ids {
		if sys.shipped.count(id) > 1 || sys.invoiced.count(id) > 1 {
			dups++
		}
	}
	return found, len(ids) - found, dups
}

// rate is the number of times in [from, to) per second.
func rate(at []time.Time, from, to time.Time) float64 {
	n := 0
	for _, t := range at {
		if !t.Before(from) && t.Before(to) {
			n++
		}
	}
	return float64(n) / to.Sub(from).Seconds()
}

// resumedAfter returns how long after fault the rate over a one-second
// window first reached half of before, or -1.
func resumedAfter(at []time.Time, fault time.Time, before float64, end time.Time) time.Duration {
	for t := fault; t.Add(time.Second).Before(end) || t.Add(time.Second).Equal(end); t = t.Add(50 * time.Millisecond) {
		if rate(at, t, t.Add(time.Second)) >= before/2 {
			return t.Sub(fault)
		}
	}
	return -1
}

// round formats a duration for a figure.
func round(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	if d < 10*time.Millisecond {
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}

// decodeJSON decodes resp's body into v.
func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

// readiness polls a service's /readyz and keeps each change of its answer.
type readiness struct {
	mu      sync.Mutex
	changes []change
	stop    chan struct{}
	done    chan struct{}
}

// change is /readyz answering status from at on.
type change struct {
	at     time.Time
	status int
}

func watchReadiness(base string) *readiness {
	r := &readiness{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second}
	go func() {
		defer close(r.done)
		last := -1
		for {
			status := 0
			if resp, err := client.Get(base + ferry.ReadyzPath); err == nil {
				status = resp.StatusCode
				resp.Body.Close()
			}
			if status != last {
				r.mu.Lock()
				r.changes = append(r.changes, change{time.Now(), status})
				r.mu.Unlock()
				last = status
			}
			select {
			case <-r.stop:
				return
			case <-time.After(25 * time.Millisecond):
			}
		}
	}()
	return r
}

func (r *readiness) finish() []change {
	close(r.stop)
	<-r.done
	return r.changes
}

// firstAfter returns how long after from /readyz first answered status,
// or -1.
func firstAfter(changes []change, from time.Time, status int) time.Duration {
	for _, c := range changes {
		if !c.at.Before(from) && c.status == status {
			return c.at.Sub(from)
		}
	}
	return -1
}

// timeline sums the outcomes by the second they were answered in,
// relative to fault: "+3s ok 120 503 4 504 1", a line a second.
func timeline(outs []outcome, fault time.Time) string {
	type counts map[int]int
	bySecond := map[int]counts{}
	lo, hi := 0, 0
	for _, o := range outs {
		s := int(o.sent.Add(o.took).Sub(fault).Truncate(time.Second) / time.Second)
		if o.sent.Add(o.took).Before(fault) {
			s--
		}
		if bySecond[s] == nil {
			bySecond[s] = counts{}
		}
		bySecond[s][o.status]++
		lo, hi = min(lo, s), max(hi, s)
	}
	var b strings.Builder
	for s := max(lo, -3); s <= hi; s++ {
		fmt.Fprintf(&b, "%+ds:", s)
		c := bySecond[s]
		statuses := make([]int, 0, len(c))
		for st := range c {
			statuses = append(statuses, st)
		}
		sort.Ints(statuses)
		for _, st := range statuses {
			fmt.Fprintf(&b, " %d×%d", st, c[st])
		}
		b.WriteString("\n")
	}
	return b.String()
}
