package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ferrygo/ferry"
)

func (a *app) callCommand() *cobra.Command {
	var params, query, headers []string
	cmd := &cobra.Command{
		Use:   "call SERVICE.ENDPOINT [JSON | @FILE | -]",
		Short: "Call an endpoint over NATS and print its answer",
		Long: `call sends one request to an endpoint over NATS (subject
ferry.SERVICE.ENDPOINT) with the JSON body given as an argument, read from
a file (@FILE) or from standard input (-), and prints the answer's body.
A problem answer is printed as one line on standard error (its problem
details on standard output with --json) and the exit code is 1.`,
		Example: `  ferry call catalog.get-product -p sku=mug
  ferry call gateway.place-order '{"sku":"mug","quantity":2}' -H 'X-API-Key: shop_…'
  ferry call catalog.list-products -q limit=10 --json`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			service, endpoint, ok := strings.Cut(args[0], ".")
			if !ok || service == "" || endpoint == "" {
				return usagef("call %q: name the endpoint as SERVICE.ENDPOINT", args[0])
			}
			call := ferry.RawCall{Service: service, Endpoint: endpoint, Params: map[string]string{}, Query: url.Values{}, Header: http.Header{}}
			for _, p := range params {
				k, v, ok := strings.Cut(p, "=")
				if !ok || k == "" {
					return usagef("-p %q: want NAME=VALUE", p)
				}
				call.Params[k] = v
			}
			for _, q := range query {
				k, v, ok := strings.Cut(q, "=")
				if !ok || k == "" {
					return usagef("-q %q: want NAME=VALUE", q)
				}
				call.Query.Add(k, v)
			}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok || strings.TrimSpace(k) == "" {
					return usagef("-H %q: want 'Name: value'", h)
				}
				call.Header.Add(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			if len(args) == 2 {
				body, err := readBody(args[1], cmd.InOrStdin())
				if err != nil {
					return err
				}
				call.Body = body
			}
			ctx, c, cancel, err := a.request(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			reply, err := ferry.CallRaw(ctx, c, call)
			if err != nil {
				return a.fail(err)
			}
			return a.printBody(reply.Body)
		},
	}
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "a path parameter, NAME=VALUE (repeatable)")
	cmd.Flags().StringArrayVarP(&query, "query", "q", nil, "a query parameter, NAME=VALUE (repeatable)")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "a request header, 'Name: value' (repeatable)")
	return cmd
}

// readBody reads a JSON body given as text, @FILE or - (standard input)
// and checks it is JSON.
func readBody(arg string, stdin io.Reader) ([]byte, error) {
	var body []byte
	var err error
	switch {
	case arg == "-":
		body, err = io.ReadAll(io.LimitReader(stdin, 64<<20))
	case strings.HasPrefix(arg, "@"):
		body, err = os.ReadFile(arg[1:])
	default:
		body = []byte(arg)
	}
	if err != nil {
		return nil, err
	}
	if !json.Valid(body) {
		return nil, usagef("the body is not JSON: %s", cut(string(body), 60))
	}
	return body, nil
}

// printBody prints a JSON body indented, anything else as it is.
func (a *app) printBody(body []byte) error {
	var out bytes.Buffer
	if json.Indent(&out, body, "", "  ") != nil {
		_, err := a.stdout.Write(body)
		return err
	}
	_, err := fmt.Fprintln(a.stdout, out.String())
	return err
}
