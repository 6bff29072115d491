package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/ferrygo/ferry"
	"github.com/ferrygo/ferry/internal/broker"
)

func (a *app) devCommand() *cobra.Command {
	var listen, dashAddr string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a development broker (NATS with JetStream) on loopback, and the dashboard",
		Long: `dev runs a NATS server with JetStream on loopback, storing in --data-dir,
and the dashboard of what runs on it, until Ctrl-C. Services started in the same directory with the
same data directory join it by themselves (FERRY_DATA_DIR); others reach it
at the URL it prints (FERRY_NATS_URL).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			octx, cancel := context.WithTimeout(ctx, 30*time.Second)
			b, err := broker.Open(octx, broker.Options{DataDir: a.dataDir, Listen: listen, Name: "ferry-dev", Logger: logger})
			cancel()
			if err != nil {
				return err
			}
			a.broker, a.client = b, ferry.NewClient(b.Conn())
			dir, _ := filepath.Abs(a.dataDir)
			url := b.URL()
			fmt.Fprintf(a.stdout, "ferry dev: broker %s (JetStream in %s)\n", url, dir)
			fmt.Fprintf(a.stdout, "  services: FERRY_NATS_URL=%s go run ./examples/shop   (or FERRY_DATA_DIR=%s)\n", url, dir)
			fmt.Fprintf(a.stdout, "  commands: ferry services --server %s\n", url)
			stop, err := a.startDashboard(ctx, dashAddr)
			if err != nil {
				return err
			}
			defer stop()
			fmt.Fprintln(a.stdout, "Ctrl-C stops")
			<-ctx.Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&dashAddr, "dashboard", "127.0.0.1:0", `the dashboard's address ("off": none)`)
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:4222", "the broker's client address (port 0: any free one)")
	return cmd
}
