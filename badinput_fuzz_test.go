package ferry

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ferrygo/ferry/internal/jobs"
	"github.com/ferrygo/ferry/internal/naming"
	"github.com/ferrygo/ferry/internal/worker"
)

// storedMsg is a JetStream message as a worker reads it: its headers and
// payload (nothing else is called by the decoders fuzzed here).
type storedMsg struct {
	jetstream.Msg
	h    nats.Header
	data []byte
}

func (m storedMsg) Headers() nats.Header { return m.h }
func (m storedMsg) Data() []byte         { return m.data }

// fuzzJobInput is a job's input with constraints, as its schema checks them.
type fuzzJobInput struct {
	Name  string   `json:"name" minLength:"1" maxLength:"20"`
	Pages int      `json:"pages,omitempty" minimum:"1"`
	Tags  []string `json:"tags,omitempty" maxItems:"3"`
}

// FuzzJobMessage feeds arbitrary Ferry-Job-* and workflow headers and
// payloads, as anyone allowed to publish on a job subject could send them,
// to what a job worker reads from a message: its limits, the record made
// from it, the wake it carries and its input. None may panic; a number out
// of range counts as none (a timeout must never wrap around to a few
// microseconds); the input is accepted exactly when it is a valid input.
func FuzzJobMessage(f *testing.F) {
	f.Add("3", "1500", "2", "2026-01-02T03:04:05.123Z", "2026-01-02T03:04:05Z", "k", "high", "7", "", []byte(`{"name":"a"}`))
	f.Add("-1", "18446744073710", "99999999999999999999", "yesterday", "", "", "urgent", "-3", "1", []byte(`{"name":""}`))
	f.Add("0", "9223372036854775807", "-2", "", "9999-99-99", "\x00", "", "18446744073709551616", "resume", []byte(`[`))
	f.Add("1e3", "0x10", "+5", "2026-01-02T03:04:05+25:00", "0001-01-01T00:00:00Z", strings.Repeat("k", 300), "low", "1", "x", []byte(`{"name":"a","pages":1e400}`))

	r := &jobRunner[fuzzJobInput, struct{}]{job: Job[fuzzJobInput, struct{}]{Name: "report"}}
	decode := payloadDecoder[fuzzJobInput](newMessageSchemas(), r.job.decl())
	published := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, maxAttempts, timeout, attempts, enqueued, runAt, key, priority, wake, replay string, data []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{
			naming.HeaderJobMaxAttempts: maxAttempts, naming.HeaderJobTimeout: timeout, naming.HeaderJobAttempts: attempts,
			naming.HeaderJobEnqueued: enqueued, naming.HeaderJobRunAt: runAt, naming.HeaderJobKey: key,
			naming.HeaderJobPriority: priority, naming.HeaderWorkflowWake: wake, naming.HeaderJobReplay: replay,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		msg := storedMsg{h: h, data: data}

		n, to, before := jobLimits(msg)
		if ms, err := strconv.ParseInt(timeout, 10, 64); err == nil && ms > 0 && ms <= int64(1<<63-1)/int64(time.Millisecond) {
			if to != time.Duration(ms)*time.Millisecond {
				t.Fatalf("timeout %q read as %v", timeout, to)
			}
		} else if to != 0 {
			t.Fatalf("timeout %q, out of range or not a number, read as %v, want none", timeout, to)
		}
		if before < 0 {
			t.Fatalf("attempts %q read as %d runs before", attempts, before)
		}
		if want, err := strconv.Atoi(maxAttempts); err == nil && n != want || err != nil && n != 0 {
			t.Fatalf("max attempts %q read as %d", maxAttempts, n)
		}

		d := &worker.Delivery{Msg: msg, Meta: &jetstream.MsgMetadata{Timestamp: published}, Attempt: 1, MaxAttempts: 5}
		rec := r.runFromMessage(d, "abcdefghijklmnopqrstuvwxyz")
		if rec.EnqueuedAt.IsZero() || rec.Job != "report" || rec.State != jobs.Queued || rec.MaxAttempts != 5 || !rec.Workflow {
			t.Fatalf("record from the message: %+v", rec)
		}
		if _, err := json.Marshal(rec); err != nil {
			t.Fatalf("the record made from the message cannot be stored: %v", err)
		}

		isReplay, token := wakeOf(h)
		if isReplay != (replay != "") {
			t.Fatalf("replay %q read as %v", replay, isReplay)
		}
		if want, err := strconv.ParseUint(wake, 10, 64); err == nil && token != want || err != nil && token != 0 {
			t.Fatalf("wake %q read as %d", wake, token)
		}

		var in fuzzJobInput
		if err := decode(data, &in); err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("an input refused without a reason")
			}
		} else if in.Name == "" || len([]rune(in.Name)) > 20 || len(in.Tags) > 3 || in.Pages < 0 {
			t.Fatalf("input %q accepted as %+v, against its schema", data, in)
		}
	})
}

// FuzzDeadLetter feeds arbitrary headers and payloads, as anyone allowed
// to publish on the dead-letter subjects could store them, to what
// ListDeadLetters and ReplayDeadLetter read: the dead letter, and the
// message that replays it. None may panic; a replay goes only to a subject
// made of valid names, in the stream of the topic (or job) it names, with
// a fresh message ID and none of the dead letter's own headers.
func FuzzDeadLetter(f *testing.F) {
	f.Add("order-placed", "shipping", "ship", "m-1", "3", "2026-01-02T03:04:05Z", "Ferry-Request-Id", "r", []byte(`{}`))
	f.Add("report", "reports", naming.JobDeadLetterConsumer, "", "-1", "never", "Ferry-Job-Attempts", "9", []byte(nil))
	f.Add("a.*", "b c", "d.>", "x", "18446744073709551616", "", "Nats-Msg-Id", "forged", []byte{0xff})
	f.Add("ferry-x", "s", "c", strings.Repeat("i", 500), "1", "", "Ferry-Dlq-Topic", "other", []byte(`[`))
	f.Add("order-placed", "shipping", "ship", "m-1", "3", "0000-01-01T0:00:00+24:00", "", "", []byte(`{}`))
	f.Fuzz(func(t *testing.T, topic, service, consumer, msgID, deliveries, when, extraKey, extraValue string, data []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{
			naming.HeaderDLQTopic: topic, naming.HeaderDLQService: service, naming.HeaderDLQConsumer: consumer,
			naming.HeaderDLQMsgID: msgID, naming.HeaderDLQDeliveries: deliveries, naming.HeaderDLQTime: when,
		} {
			if v != "" {
				h.Set(k, v)
			}
		}
		if extraKey != "" {
			h[extraKey] = append(h[extraKey], extraValue)
		}

		dl := deadLetterFrom(7, h, data)
		if dl.Sequence != 7 || dl.Topic != h.Get(naming.HeaderDLQTopic) || string(dl.Data) != string(data) {
			t.Fatalf("dead letter read as %+v", dl)
		}
		if _, err := json.Marshal(dl.Time); err != nil {
			t.Fatalf("the dead letter's time %q cannot be answered: %v", when, err)
		}

		msg, target, res, err := replayMessage(7, h, data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "ferry: replay dead letter 7: ") {
				t.Fatalf("unclear refusal: %v", err)
			}
			return
		}
		topic, service, consumer = dl.Topic, dl.Service, dl.Consumer
		if naming.CheckTopicName(topic) != nil || naming.CheckServiceName(service) != nil {
			t.Fatalf("replayed a dead letter with topic %q, service %q", topic, service)
		}
		if !plainSubject(msg.Subject) {
			t.Fatalf("replay subject %q", msg.Subject)
		}
		job := consumer == naming.JobDeadLetterConsumer
		switch {
		case job && (target != naming.JobStream(topic) || !strings.HasPrefix(msg.Subject, naming.JobRunSubject(topic))):
			t.Fatalf("a job's replay goes to %s in %s", msg.Subject, target)
		case !job && (target != naming.TopicStream(topic) || msg.Subject != naming.ReplaySubject(topic, service, consumer)):
			t.Fatalf("an event's replay goes to %s in %s", msg.Subject, target)
		}
		if got := msg.Header.Get(naming.HeaderMsgID); got != res.ID || !strings.HasPrefix(got, "replay:7:") || len(msg.Header[naming.HeaderMsgID]) != 1 {
			t.Fatalf("replay message ID %q (result %q)", msg.Header[naming.HeaderMsgID], res.ID)
		}
		for k := range msg.Header {
			if lower := strings.ToLower(k); strings.HasPrefix(lower, "ferry-dlq-") || strings.HasPrefix(lower, "nats-") && k != naming.HeaderMsgID {
				t.Fatalf("the replay carries the dead letter's header %q", k)
			}
		}
		if job && msg.Header.Get(naming.HeaderJobAttempts) != "" {
			t.Fatal("a replayed job keeps its attempts")
		}
	})
}

// plainSubject reports whether subject is dot-separated tokens without
// wildcards, spaces or control characters.
func plainSubject(subject string) bool {
	for _, tok := range strings.Split(subject, ".") {
		if tok == "" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == '*' || r == '>' || r == 0x7f }) {
			return false
		}
	}
	return true
}
