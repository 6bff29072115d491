package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ferrygo/ferry"
)

func (a *app) specCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "spec openapi|asyncapi SERVICE",
		Short: "Export a service's OpenAPI or AsyncAPI document (JSON), read over NATS",
		Long: `spec reads a service's OpenAPI 3.1 or AsyncAPI 3.0 document from the
service itself over NATS (subject ferry.docs.SERVICE.openapi|asyncapi), so
services without HTTP have theirs too, and prints it or writes it to -o.`,
		Example: `  ferry spec openapi gateway -o gateway.openapi.json
  ferry spec asyncapi worker`,
		Args:      cobra.ExactArgs(2),
		ValidArgs: []string{"openapi", "asyncapi"},
		RunE: func(cmd *cobra.Command, args []string) error {
			fetch := map[string]func(ctx0 context.Context, c *ferry.Client, service string) ([]byte, error){
				"openapi": ferry.FetchOpenAPI, "asyncapi": ferry.FetchAsyncAPI,
			}[args[0]]
			if fetch == nil {
				return usagef("spec %q: want openapi or asyncapi", args[0])
			}
			ctx, c, cancel, err := a.request(cmd)
			if err != nil {
				return err
			}
			defer cancel()
			doc, err := fetch(ctx, c, args[1])
			if err != nil {
				return a.fail(err)
			}
			if out != "" && out != "-" {
				if err := os.WriteFile(out, doc, 0o644); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "wrote %s's %s document to %s (%d bytes)\n", args[1], args[0], out, len(doc))
				return nil
			}
			return a.printBody(doc)
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the document to this file")
	return cmd
}
