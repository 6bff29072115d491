package faults_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/natscluster"
)

// TestClusterNodeLoss: on a 3-node cluster with streams of 3 replicas,
// the node the gateway is connected to is SIGKILLed (and restarted),
// or paused with SIGSTOP as a partition (then SIGCONT), under the
// gateway's load (a call, a publish, an enqueue per order; the event
// consumed, the job run). No acknowledged order is lost; the streams and
// consumers the node led elect new leaders; orders resume; the node
// catches up once back.
func TestClusterNodeLoss(t *testing.T) {
	optIn(t)
	tests := []struct {
		scenario string
		fault    string
		down     time.Duration
		pause    bool
	}{
		{"cluster-node-kill", "SIGKILL of the 3-node cluster's node the gateway is connected to (streams of 3 replicas) under HTTP load (call + publish + enqueue per order; the event consumed, the job run), restarted after 10 s", 10 * time.Second, false},
		{"cluster-node-partition", "the 3-node cluster's node the gateway is connected to (streams of 3 replicas) paused with SIGSTOP for 10 s (a partition: its connections open, nothing answered) under HTTP load (call + publish + enqueue per order; the event consumed, the job run), then SIGCONT", 10 * time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			nodeLoss(t, tt.scenario, tt.fault, tt.down, tt.pause)
		})
	}
}

// asset is a stream, or a consumer of one, with a Raft group of its own.
type asset struct{ stream, consumer string }

func (a asset) String() string {
	if a.consumer == "" {
		return a.stream
	}
	return a.stream + "/" + a.consumer
}

// leaders returns each stream's and consumer's leader.
func leaders(ctx context.Context, js jetstream.JetStream) (map[asset]string, error) {
	out := map[asset]string{}
	streams := js.ListStreams(ctx)
	for si := range streams.Info() {
		out[asset{stream: si.Config.Name}] = leaderOf(si.Cluster)
		s, err := js.Stream(ctx, si.Config.Name)
		if err != nil {
			return nil, err
		}
		consumers := s.ListConsumers(ctx)
		for ci := range consumers.Info() {
			out[asset{si.Config.Name, ci.Name}] = leaderOf(ci.Cluster)
		}
		if err := consumers.Err(); err != nil {
			return nil, err
		}
	}
	return out, streams.Err()
}

func leaderOf(c *jetstream.ClusterInfo) string {
	if c == nil {
		return ""
	}
	return c.Leader
}

// leader returns a's leader as its info reports it now ("" for none).
func leader(ctx context.Context, js jetstream.JetStream, a asset) string {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := js.Stream(ctx, a.stream)
	if err != nil {
		return ""
	}
	if a.consumer == "" {
		return leaderOf(s.CachedInfo().Cluster)
	}
	c, err := s.Consumer(ctx, a.consumer)
	if err != nil {
		return ""
	}
	return leaderOf(c.CachedInfo().Cluster)
}

// caughtUp reports whether every stream has its 3 replicas current.
func caughtUp(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	streams := js.ListStreams(ctx)
	for si := range streams.Info() {
		if si.Cluster == nil || si.Cluster.Leader == "" || len(si.Cluster.Replicas) != 2 {
			return fmt.Errorf("stream %s: cluster %+v", si.Config.Name, si.Cluster)
		}
		for _, r := range si.Cluster.Replicas {
			if !r.Current || r.Offline || r.Lag > 0 {
				return fmt.Errorf("stream %s: replica %s behind (current %t, offline %t, lag %d)", si.Config.Name, r.Name, r.Current, r.Offline, r.Lag)
			}
		}
	}
	return streams.Err()
}

func nodeLoss(t *testing.T, scenario, fault string, down time.Duration, pause bool) {
	bin, err := natscluster.Binary(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := natscluster.Start(t.Context(), natscluster.Options{Nodes: 3, Dir: t.TempDir(), Bin: bin, Name: "faults"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Close() })

	sys := &system{}
	base, hosts := sys.start(t, cluster.URL(), 3)
	d := startDriver(base, 4)
	time.Sleep(3 * time.Second)

	// The victim: the node the gateway is connected to, so its calls,
	// publishes and enqueues must move to another node as well as wait
	// for the elections of what the node led.
	nc, err := nats.Connect(cluster.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	before, err := leaders(t.Context(), js)
	if err != nil {
		t.Fatal(err)
	}
	victim := -1
	var survivors []string
	for i, node := range cluster.Nodes() {
		if node.Name == hosts[0].NATS().ConnectedServerName() {
			victim = i
		} else {
			survivors = append(survivors, node.URL())
		}
	}
	if victim < 0 {
		t.Fatalf("the gateway is connected to none of the nodes: %q", hosts[0].NATS().ConnectedServerName())
	}
	name := cluster.Nodes()[victim].Name
	var led []asset
	for a, l := range before {
		if l == name {
			led = append(led, a)
		}
	}
	clientsOnVictim := 0
	for _, h := range hosts {
		if h.NATS().ConnectedServerName() == name {
			clientsOnVictim++
		}
	}
	// Leaders are asked of the other nodes: the victim answers nothing.
	onc, err := nats.Connect(strings.Join(survivors, ","))
	if err != nil {
		t.Fatal(err)
	}
	defer onc.Close()
	ojs, _ := jetstream.New(onc)

	faultAt := time.Now()
	if pause {
		if err := cluster.Nodes()[victim].Process().Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	} else {
		cluster.Kill(victim)
	}
	// Elections are watched on until every asset the node led has another
	// leader (at most 20 s), across the node's return.
	elected := map[asset]time.Duration{}
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for time.Since(faultAt) < 20*time.Second && len(elected) < len(led) {
			for _, a := range led {
				if _, ok := elected[a]; ok {
					continue
				}
				if l := leader(t.Context(), ojs, a); l != "" && l != name {
					elected[a] = time.Since(faultAt)
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	time.Sleep(time.Until(faultAt.Add(down)))
	backAt := time.Now()
	if pause {
		if err := cluster.Nodes()[victim].Process().Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	} else if err := cluster.Restart(t.Context(), victim); err != nil {
		t.Fatal(err)
	}
	caughtUpAfter := time.Duration(-1)
	var lastErr error
	for time.Since(backAt) < 60*time.Second {
		if lastErr = caughtUp(t.Context(), ojs); lastErr == nil {
			caughtUpAfter = time.Since(backAt)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if caughtUpAfter < 0 {
		t.Errorf("the node did not catch up within 60 s: %v", lastErr)
	}
	// Run on until orders are acknowledged at half their earlier rate
	// again (at most 20 s), and 2 s more.
	rateBefore := func() float64 {
		d.mu.Lock()
		defer d.mu.Unlock()
		_, at := acked(d.out)
		return rate(at, faultAt.Add(-2*time.Second), faultAt)
	}()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		d.mu.Lock()
		_, at := acked(d.out)
		d.mu.Unlock()
		if resumedAfter(at, backAt, rateBefore, time.Now()) >= 0 {
			break
		}
	}
	time.Sleep(2 * time.Second)
	<-watched
	outs := d.finish()
	end := time.Now()
	t.Logf("answers by second from the fault (status×count):\n%s", timeline(outs, faultAt))

	ids, at := acked(outs)
	found, lost, dups := sys.verify(ids, 30*time.Second)
	if lost > 0 {
		t.Errorf("%d of %d acknowledged orders lost", lost, len(ids))
	}
	var election, streamsElection, consumersElection time.Duration
	var notElected []string
	for _, a := range led {
		if e, ok := elected[a]; ok {
			election = max(election, e)
			if a.consumer == "" {
				streamsElection = max(streamsElection, e)
			} else {
				consumersElection = max(consumersElection, e)
			}
		} else {
			notElected = append(notElected, a.String())
		}
	}
	resumed := resumedAfter(at, faultAt, rateBefore, end)
	if resumed < 0 {
		t.Errorf("orders never ran at half their earlier rate again (%.0f/s before)", rateBefore)
	}
	failed := map[int]int{}
	for _, o := range outs {
		if o.status != http.StatusOK && !o.sent.Before(faultAt) {
			failed[o.status]++
		}
	}
	electionFigure := round(election)
	if len(notElected) > 0 {
		electionFigure = fmt.Sprintf("not within 20 s for %s", strings.Join(notElected, ", "))
	}
	figures := map[string]string{
		"down":                  round(down),
		"led_by_node":           fmt.Sprint(len(led)),
		"election":              electionFigure,
		"streams_election":      round(streamsElection),
		"consumers_election":    round(consumersElection),
		"led":                   joinAssets(led),
		"resumed_after":         round(resumed),
		"caught_up_after":       round(caughtUpAfter),
		"orders_per_s_before":   fmt.Sprintf("%.0f", rateBefore),
		"orders_per_s_down":     fmt.Sprintf("%.0f", rate(at, faultAt, backAt)),
		"orders_per_s_after":    fmt.Sprintf("%.0f", rate(at, backAt.Add(caughtUpAfter), end)),
		"clients_on_node":       fmt.Sprintf("%d of %d", clientsOnVictim, len(hosts)),
		"failed_after_fault":    countsText(failed),
		"orders_sent":           fmt.Sprint(len(outs)),
		"acknowledged_in_fault": fmt.Sprint(countBetween(at, faultAt, backAt)),
	}
	t.Logf("%s: node %s led %v; acknowledged %d, found %d, lost %d, duplicates %d; %v", scenario, name, led, len(ids), found, lost, dups, figures)
	writeRecord(t, Record{
		Scenario: scenario, Fault: fault, Runs: 1,
		Acknowledged: len(ids), Found: found, Lost: lost, Duplicates: dups,
		Command: "FERRY_CLUSTER_TESTS=1 go test ./internal/faults -run 'TestClusterNodeLoss/" + scenario + "$' -v",
		Figures: figures,
		Notes:   "election: from the fault until every stream and consumer the node led had another leader (stream info's cluster data); resumed_after: until acknowledged orders ran at half their earlier rate over 1 s; caught_up_after: from the node's return until every stream's replicas were current",
	})
}

func joinAssets(as []asset) string {
	names := make([]string, len(as))
	for i, a := range as {
		names[i] = a.String()
	}
	return strings.Join(names, ", ")
}
