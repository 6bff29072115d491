package ferry

import (
	"context"

	"github.com/nats-io/nats.go"

	"github.com/ferrygo/ferry/internal/envelope"
)

// InvokeNATS runs the NATS call m to the endpoint named name as the
// service's NATS dispatch does (its header limit, decoding, the endpoint),
// without a broker, and returns the response it would send.
func (s *Service) InvokeNATS(ctx context.Context, name string, m *nats.Msg) *envelope.Response {
	return s.natsCall(ctx, name, m)
}
