package ferry_test

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/ferrygo/ferry"
)

// WhoAmIOutput is the output of the vault's whoami endpoint.
type WhoAmIOutput struct {
	Body struct {
		Authorization string `json:"authorization"`
	}
}

// WhoAmI is the vault service's contract.
var WhoAmI = ferry.Endpoint[Empty, WhoAmIOutput]{
	Service: "vault", Name: "whoami", Method: http.MethodGet, Path: "/whoami",
}

// Client middleware wraps every call and publish of a client: here one
// attaches service-to-service credentials, another reports each call's
// outcome. Given to a service or host with ferry.WithClientMiddleware, it
// wraps the service's client.
func ExampleClientMiddleware() {
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	cfg := ferry.Config{NATSEmbed: true, DataDir: dir}

	vault := ferry.MustNew("vault", "1.0.0", ferry.WithConfig(cfg), ferry.WithoutHTTP(), ferry.WithNATS(), quiet)
	ferry.Handle(vault, WhoAmI, func(ctx context.Context, _ *Empty) (*WhoAmIOutput, error) {
		out := &WhoAmIOutput{}
		out.Body.Authorization = ferry.RequestFromContext(ctx).Header("Authorization")
		return out, nil
	})
	host, _ := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	_ = host.Add(vault)
	if err := host.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer host.Shutdown(context.Background())

	credentials := func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, m *ferry.OutgoingMessage) error {
			m.Header.Set("Authorization", "Bearer service-token")
			return next(ctx, m)
		}
	}
	report := func(next ferry.ClientHandler) ferry.ClientHandler {
		return func(ctx context.Context, m *ferry.OutgoingMessage) error {
			err := next(ctx, m)
			fmt.Printf("%s %s.%s: error %v\n", m.Kind, m.Service, m.Endpoint, err)
			return err
		}
	}
	client := ferry.NewClient(host.NATS(), ferry.ClientWithMiddleware(report, credentials))

	out, err := WhoAmI.Call(context.Background(), client, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(out.Body.Authorization)
	// Output:
	// endpoint vault.whoami: error <nil>
	// Bearer service-token
}
