package main

import (
	"context"
	"log/slog"
	"os"
	"slices"
)

// contender is one system measured.
type contender struct {
	name string
	// server names the processes whose CPU counts as the contender's
	// server's (none: the broker runs in this process).
	server []string
	// prepare checks the server and readies it once per run (a scratch
	// database), and describes its durability settings.
	prepare func(ctx context.Context, o *options) (durability string, err error)
	// cleanup undoes prepare at the end of the run.
	cleanup func(ctx context.Context, o *options)
	// start starts a fresh instance whose steps run s.step.
	start func(ctx context.Context, o *options, s *sink) (instance, error)
}

// instance is one contender, started: running workflows.
type instance interface {
	// start starts a run of the workflow with input n and returns once the
	// contender has stored it; wait blocks until the caller observes the
	// run succeeded and returns its result's sum.
	start(ctx context.Context, n int) (wait func(context.Context) (int, error), err error)
	// counters returns the contender's write counters (see writes/run in
	// the report).
	counters(ctx context.Context) (map[string]float64, error)
	// verify checks, untimed, that total runs are recorded succeeded.
	verify(ctx context.Context, total int) error
	close(ctx context.Context) error
}

// defaultContenders are the contenders of a run without -contenders.
var defaultContenders = []string{"ferry-interval", "ferry-always", "dbos"}

var contenders = map[string]*contender{
	"ferry-interval": {name: "ferry-interval", prepare: prepareFerry(syncInterval), start: startFerry(syncInterval)},
	"ferry-always":   {name: "ferry-always", prepare: prepareFerry(syncAlways), start: startFerry(syncAlways)},
	"dbos":           {name: "dbos", server: []string{"postgres"}, prepare: prepareDBOS, cleanup: cleanupDBOS, start: startDBOS},
}

func contenderNames() []string {
	var names []string
	for n := range contenders {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}
