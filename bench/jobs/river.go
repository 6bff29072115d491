package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferrygo/ferry/bench/internal/procstat"
	"net/url"
	"os"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// riverArgs is River's job: the same payload.
type riverArgs struct {
	payload
}

// Kind implements river.JobArgs.
func (riverArgs) Kind() string { return "bench_noop" }

// scratchURL is the URL of the scratch database.
func scratchURL(o *options) (string, error) {
	u, err := url.Parse(o.pg)
	if err != nil {
		return "", err
	}
	u.Path = "/" + o.pgDB
	return u.String(), nil
}

// prepareRiver creates the scratch database, runs River's migrations and
// describes PostgreSQL's durability settings.
func prepareRiver(ctx context.Context, o *options) (string, error) {
	conn, err := pgx.Connect(ctx, o.pg)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL at %s: %w", o.pg, err)
	}
	defer conn.Close(ctx)
	var version string
	settings := map[string]string{}
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		return "", err
	}
	for _, name := range []string{"synchronous_commit", "fsync", "wal_sync_method", "full_page_writes", "commit_delay", "shared_buffers"} {
		var v string
		if err := conn.QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil {
			return "", err
		}
		settings[name] = v
	}
	db := pgx.Identifier{o.pgDB}.Sanitize()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+db); err != nil {
		return "", err
	}
	dsn, err := scratchURL(o)
	if err != nil {
		return "", err
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer pool.Close()
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return "", err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return "", fmt.Errorf("river migrations: %w", err)
	}
	// WAL records per job, if the contrib extension is there.
	walInspect := "WAL records counted with pg_walinspect"
	if _, err := pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_walinspect"); err != nil {
		walInspect = "no pg_walinspect: WAL bytes only"
	}
	return fmt.Sprintf("PostgreSQL %s: synchronous_commit=%s, fsync=%s, wal_sync_method=%s, full_page_writes=%s, commit_delay=%s, shared_buffers=%s (%s); pool of %d connections",
		version, settings["synchronous_commit"], settings["fsync"], settings["wal_sync_method"], settings["full_page_writes"],
		settings["commit_delay"], settings["shared_buffers"], walInspect, o.pgConns), nil
}

// cleanupRiver drops the scratch database.
func cleanupRiver(ctx context.Context, o *options) {
	conn, err := pgx.Connect(ctx, o.pg)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{o.pgDB}.Sanitize()+" WITH (FORCE)")
}

type riverInstance struct {
	pool     *pgxpool.Pool
	client   *river.Client[pgx.Tx]
	startLSN string // the WAL position at the first counters call
}

func startRiver(ctx context.Context, o *options, s *sink) (instance, error) {
	dsn, err := scratchURL(o)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = int32(o.pgConns)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, "TRUNCATE river_job"); err != nil {
		pool.Close()
		return nil, err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, river.WorkFunc(func(_ context.Context, job *river.Job[riverArgs]) error {
		s.run(&job.Args.payload)
		return nil
	}))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: concurrency}},
		Workers: workers,
		Logger:  logger(),
	})
	if err == nil {
		err = client.Start(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &riverInstance{pool: pool, client: client}, nil
}

func (r *riverInstance) enqueue(ctx context.Context, p *payload) error {
	_, err := r.client.Insert(ctx, riverArgs{*p}, nil)
	return err
}

func (r *riverInstance) done(ctx context.Context) (int, error) {
	var n int
	err := r.pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&n)
	return n, err
}

// counters are the WAL written since the first call: bytes, and (with
// pg_walinspect) records and transaction records (commits). The WAL is
// the whole server's: other databases' writes count too.
func (r *riverInstance) counters(ctx context.Context) (map[string]float64, error) {
	var lsn string
	if err := r.pool.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&lsn); err != nil {
		return nil, err
	}
	if r.startLSN == "" {
		r.startLSN = lsn
		return map[string]float64{"WAL bytes": 0, "WAL records": 0, "WAL commit records": 0, "disk write bytes": float64(procstat.WriteBytes("postgres"))}, nil
	}
	out := map[string]float64{"disk write bytes": float64(procstat.WriteBytes("postgres"))}
	var bytes float64
	if err := r.pool.QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)", lsn, r.startLSN).Scan(&bytes); err != nil {
		return nil, err
	}
	out["WAL bytes"] = bytes
	// Records by resource manager; Transaction records are commits.
	rows, err := r.pool.Query(ctx, `SELECT "resource_manager/record_type", count FROM pg_get_wal_stats($1::pg_lsn, $2::pg_lsn)`, r.startLSN, lsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "river: WAL records not counted:", err)
	} else {
		var total, commits float64
		for rows.Next() {
			var rm string
			var n int64
			if err := rows.Scan(&rm, &n); err != nil {
				rows.Close()
				return nil, err
			}
			total += float64(n)
			if strings.EqualFold(rm, "Transaction") {
				commits += float64(n)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			fmt.Fprintln(os.Stderr, "river: WAL records not counted:", err)
		} else {
			out["WAL records"], out["WAL commit records"] = total, commits
		}
	}
	return out, nil
}

func (r *riverInstance) verify(ctx context.Context, total int) error {
	var completed, all int
	if err := r.pool.QueryRow(ctx, "SELECT count(*) FILTER (WHERE state = 'completed'), count(*) FROM river_job").Scan(&completed, &all); err != nil {
		return err
	}
	if completed != total || all != total {
		return fmt.Errorf("river_job: %d rows, %d completed; want %d completed", all, completed, total)
	}
	return nil
}

func (r *riverInstance) close(ctx context.Context) error {
	err := r.client.Stop(ctx)
	r.pool.Close()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
