package ferry

import (
	"net/http"
	"slices"
	"strings"

	"github.com/ferrygo/ferry/internal/asyncapi"
)

// AsyncAPIPath is where a service serves its AsyncAPI 3.0 document (.json
// and .yaml): the topics it publishes and subscribes to, with their
// payload schemas.
const AsyncAPIPath = "/asyncapi"

// AsyncAPI returns the service's AsyncAPI 3.0 document as JSON.
func (s *Service) AsyncAPI() ([]byte, error) {
	doc, err := s.asyncAPIDocument()
	if err != nil {
		return nil, err
	}
	return doc.JSON()
}

func (s *Service) asyncAPIDocument() (*asyncapi.Document, error) {
	s.mu.Lock()
	published := make([]topicDecl, 0, len(s.published))
	for _, d := range s.published {
		published = append(published, d)
	}
	subs := slices.Clone(s.subs)
	s.mu.Unlock()
	topic := func(d topicDecl) asyncapi.Topic {
		return asyncapi.Topic{Name: d.name, Subject: d.subject, Description: d.description, Payload: s.messages.schema(d)}
	}
	info := asyncapi.Info{Title: s.name, Version: s.version, Description: s.description, Registry: s.messages.registry}
	for _, d := range published {
		info.Publishes = append(info.Publishes, topic(d))
	}
	for _, sub := range subs {
		info.Subscribes = append(info.Subscribes, asyncapi.Subscription{Topic: topic(sub.decl()), Consumer: sub.consumerName()})
	}
	return asyncapi.Build(info)
}

// serveAsyncAPI answers /asyncapi.json and /asyncapi.yaml, built from the
// service's declarations at each request.
func (s *Service) serveAsyncAPI(w http.ResponseWriter, r *http.Request) {
	doc, err := s.asyncAPIDocument()
	var body []byte
	if err == nil {
		if strings.HasSuffix(r.URL.Path, ".yaml") {
			body, err = doc.YAML()
			w.Header().Set("Content-Type", "application/yaml")
		} else {
			body, err = doc.JSON()
			w.Header().Set("Content-Type", "application/json")
		}
	}
	if err != nil {
		s.logger.Error("ferry: AsyncAPI document", "err", err.Error())
		w.Header().Del("Content-Type")
		writeProblem(w, (&Error{Status: http.StatusInternalServerError, Detail: "the AsyncAPI document could not be built"}).complete(requestID(r.Header.Get(HeaderRequestID))))
		return
	}
	_, _ = w.Write(body)
}
