package ferry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/ferrygo/ferry"
)

// ReserveInput is the input of the stock service's reserve endpoint.
type ReserveInput struct {
	SKU string `path:"sku"`
}

// Reserve is the stock service's contract.
var Reserve = ferry.Endpoint[ReserveInput, Empty]{
	Service: "stock", Name: "reserve", Method: http.MethodPost, Path: "/reserve/{sku}",
}

// A failed call to another service stops at the handler that made it: returned
// as it is, it answers 502 (503 or 504 for a callee that is unavailable or
// late) with the caller's request ID and none of the callee's detail or field
// errors. The handler decides what the callee's answer means to its own caller,
// or passes it on as it is.
func ExampleCallError() {
	dir, _ := os.MkdirTemp("", "ferry-example")
	defer os.RemoveAll(dir)
	cfg := ferry.Config{Addr: "127.0.0.1:0", NATSEmbed: true, DataDir: dir}

	stock := ferry.MustNew("stock", "1.0.0", ferry.WithConfig(cfg), ferry.WithoutHTTP(), ferry.WithNATS(), quiet)
	ferry.Handle(stock, Reserve, func(ctx context.Context, in *ReserveInput) (*Empty, error) {
		return nil, &ferry.Error{Status: http.StatusUnprocessableEntity, Code: "unknown_sku",
			Errors: []*ferry.FieldError{{Location: "path.sku", Message: "no such SKU"}}}
	})
	shop := ferry.MustNew("shop", "1.0.0", ferry.WithConfig(cfg), quiet)
	ferry.Post(shop, "buy", "/buy/{sku}", func(ctx context.Context, in *struct {
		SKU  string `path:"sku"`
		Then string `query:"then"`
	}) (*Empty, error) {
		_, err := Reserve.Call(ctx, shop.Client(), &ReserveInput{SKU: in.SKU})
		var call *ferry.CallError
		switch {
		case err == nil:
			return &Empty{}, nil
		case in.Then == "translate" && errors.As(err, &call) && call.Code == "unknown_sku":
			return nil, &ferry.Error{Status: http.StatusNotFound, Code: "no_such_product", Detail: "the shop does not sell " + in.SKU}
		case in.Then == "pass":
			return nil, ferry.PassOn(err)
		}
		return nil, err
	})

	host, _ := ferry.NewHost(ferry.WithConfig(cfg), quiet)
	_ = host.Add(stock, shop)
	if err := host.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	defer host.Shutdown(context.Background())

	for _, then := range []string{"return", "translate", "pass"} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+shop.Addr().String()+"/buy/kettle?then="+then, nil)
		req.Header.Set(ferry.HeaderRequestID, "req-1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	}
	// Output:
	// 502 {"title":"Bad Gateway","status":502,"code":"downstream_error","detail":"a service this request depends on failed; the request ID identifies it in the service's logs","request_id":"req-1"}
	// 404 {"title":"Not Found","status":404,"code":"no_such_product","detail":"the shop does not sell kettle","request_id":"req-1"}
	// 422 {"title":"Unprocessable Entity","status":422,"code":"unknown_sku","request_id":"req-1","errors":[{"message":"no such SKU","location":"path.sku"}]}
}
