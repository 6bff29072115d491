package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrygo/ferry/dashboard"
)

func (a *app) dashboardCommand() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the live dashboard of the system on the broker",
		Long: `dashboard serves a web page that shows the system on the broker live:
services and instances, endpoints with rates, errors and latency, topics and
their consumers' lag, dead letters (replay, delete), jobs and workflow runs
(cancel, retry, a run's steps) and a picture of who publishes, consumes and
calls what. It listens on loopback on a free port unless --addr says
otherwise, prints its URL, and runs until Ctrl-C. Its buttons are guarded
against cross-site requests and DNS rebinding (docs/dashboard.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := a.connect(cmd.Context()); err != nil {
				return err
			}
			stop, err := a.startDashboard(cmd.Context(), addr)
			if err != nil {
				return err
			}
			defer stop()
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "the address to listen on (loopback and a free port by default)")
	return cmd
}

// startDashboard serves the dashboard on addr ("off": not at all) over
// the connected client and prints its URL; stop ends it.
func (a *app) startDashboard(ctx context.Context, addr string) (stop func(), err error) {
	if addr == "off" {
		return func() {}, nil
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	srv, err := dashboard.Start(ctx, a.client, dashboard.Config{Addr: addr, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	fmt.Fprintf(a.stdout, "dashboard: %s\n", srv.URL())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx) //nolint:errcheck // stopping
	}, nil
}
