//go:build ferry_noembed

package broker

import (
	"context"
	"errors"
	"os"
)

// startServer fails: this program was built without the embedded broker.
func startServer(context.Context, Options, *os.File) (*Broker, error) {
	return nil, errors.New("ferry: this program was built without the embedded broker (build tag ferry_noembed); set FERRY_NATS_URL to use an external NATS server")
}
