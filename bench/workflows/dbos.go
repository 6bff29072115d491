package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/ferrygo/ferry/bench/internal/procstat"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dbos-inc/dbos-transact-golang/dbos"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// dbosSchema is the schema of DBOS's system tables (its default).
const dbosSchema = "dbos"

// scratchURL is the URL of the scratch database.
func scratchURL(o *options) (string, error) {
	u, err := url.Parse(o.pg)
	if err != nil {
		return "", err
	}
	u.Path = "/" + o.pgDB
	return u.String(), nil
}

// dbosURL is the scratch database's URL for DBOS, with the size of its
// pool when -pg-conns is set.
func dbosURL(o *options) (string, error) {
	u, err := url.Parse(o.pg)
	if err != nil {
		return "", err
	}
	u.Path = "/" + o.pgDB
	if o.pgConns > 0 {
		q := u.Query()
		q.Set("pool_max_conns", strconv.Itoa(o.pgConns))
		u.RawQuery = q.Encode()
	}
	return u.String(), nil
}

// prepareDBOS creates the scratch database and describes PostgreSQL's
// durability settings. DBOS creates its tables itself when it starts.
func prepareDBOS(ctx context.Context, o *options) (string, error) {
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
	scratch, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer scratch.Close(ctx)
	// WAL records per run, if the contrib extension is there.
	walInspect := "WAL records counted with pg_walinspect"
	if _, err := scratch.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_walinspect"); err != nil {
		walInspect = "no pg_walinspect: WAL bytes only"
	}
	pool := "DBOS's default pool (20 connections)"
	if o.pgConns > 0 {
		pool = fmt.Sprintf("a pool of %d connections", o.pgConns)
	}
	return fmt.Sprintf("PostgreSQL %s: synchronous_commit=%s, fsync=%s, wal_sync_method=%s, full_page_writes=%s, commit_delay=%s, shared_buffers=%s (%s); %s",
		version, settings["synchronous_commit"], settings["fsync"], settings["wal_sync_method"], settings["full_page_writes"],
		settings["commit_delay"], settings["shared_buffers"], walInspect, pool), nil
}

// cleanupDBOS drops the scratch database.
func cleanupDBOS(ctx context.Context, o *options) {
	conn, err := pgx.Connect(ctx, o.pg)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{o.pgDB}.Sanitize()+" WITH (FORCE)")
}

type dbosInstance struct {
	dctx     dbos.Context
	three    dbos.Workflow[input, output]
	pool     *pgxpool.Pool // the bench's own, for counters and verify
	startLSN string        // the WAL position at the first counters call
}

func startDBOS(ctx context.Context, o *options, s *sink) (instance, error) {
	dsn, err := scratchURL(o)
	if err != nil {
		return nil, err
	}
	ddsn, err := dbosURL(o)
	if err != nil {
		return nil, err
	}
	// DBOS's context outlives ctx's cancellation until Shutdown.
	dctx, err := dbos.NewContext(context.WithoutCancel(ctx), dbos.Config{AppName: "ferry-bench-workflows", DatabaseURL: ddsn, Logger: logger()})
	if err != nil {
		return nil, err
	}
	d := &dbosInstance{dctx: dctx}
	// The workflow: three steps, each checkpointed by RunAsStep.
	d.three = func(ctx dbos.Context, in input) (output, error) {
		var sum int
		for i, name := range []string{"one", "two", "three"} {
			v, err := dbos.RunAsStep(ctx, func(context.Context) (int, error) { return s.step(in.N, i+1), nil }, dbos.WithStepName(name))
			if err != nil {
				return output{}, err
			}
			sum += v
		}
		return output{Sum: sum}, nil
	}
	dbos.RegisterWorkflow(dctx, d.three, dbos.WithWorkflowName("three"))
	// The bench's own small pool: truncate the tables of runs (DBOS created
	// them in NewContext), count writes, verify.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err == nil {
		cfg.MaxConns = 2
		d.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	}
	if err == nil {
		err = d.truncate(ctx)
	}
	if err == nil {
		err = dbos.Launch(dctx)
	}
	if err != nil {
		if d.pool != nil {
			d.pool.Close()
		}
		_ = dbos.Shutdown(dctx, 10*time.Second)
		return nil, err
	}
	return d, nil
}

// truncate empties DBOS's tables that hold runs (those with a
// workflow_uuid column), so each measurement starts from empty tables.
func (d *dbosInstance) truncate(ctx context.Context) error {
	rows, err := d.pool.Query(ctx, `SELECT DISTINCT table_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'workflow_uuid'`, dbosSchema)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		return fmt.Errorf("no DBOS tables in schema %s", dbosSchema)
	}
	for i, t := range tables {
		tables[i] = pgx.Identifier{dbosSchema, t}.Sanitize()
	}
	_, err = d.pool.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", ")+" CASCADE")
	return err
}

func (d *dbosInstance) start(ctx context.Context, n int) (func(context.Context) (int, error), error) {
	h, err := dbos.RunWorkflow(d.dctx, d.three, input{N: n})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (int, error) {
		var opts []dbos.GetResultOption
		if dl, ok := ctx.Deadline(); ok {
			opts = append(opts, dbos.WithHandleTimeout(time.Until(dl)))
		}
		out, err := h.GetResult(opts...)
		return out.Sum, err
	}, nil
}

// counters are the WAL written since the first call: bytes, and (with
// pg_walinspect) records and transaction records (commits). The WAL is
// the whole server's: other databases' writes count too.
func (d *dbosInstance) counters(ctx context.Context) (map[string]float64, error) {
	var lsn string
	if err := d.pool.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&lsn); err != nil {
		return nil, err
	}
	if d.startLSN == "" {
		d.startLSN = lsn
		return map[string]float64{"WAL bytes": 0, "WAL records": 0, "WAL commit records": 0, "disk write bytes": float64(procstat.WriteBytes("postgres"))}, nil
	}
	out := map[string]float64{"disk write bytes": float64(procstat.WriteBytes("postgres"))}
	var bytes float64
	if err := d.pool.QueryRow(ctx, "SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)", lsn, d.startLSN).Scan(&bytes); err != nil {
		return nil, err
	}
	out["WAL bytes"] = bytes
	// Records by resource manager; Transaction records are commits.
	rows, err := d.pool.Query(ctx, `SELECT "resource_manager/record_type", count FROM pg_get_wal_stats($1::pg_lsn, $2::pg_lsn)`, d.startLSN, lsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbos: WAL records not counted:", err)
		return out, nil
	}
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
		fmt.Fprintln(os.Stderr, "dbos: WAL records not counted:", err)
	} else {
		out["WAL records"], out["WAL commit records"] = total, commits
	}
	return out, nil
}

// verify checks that total runs are recorded SUCCESS, each with its
// three steps' outputs.
func (d *dbosInstance) verify(ctx context.Context, total int) error {
	var succeeded, all, outputs int
	q := fmt.Sprintf("SELECT count(*) FILTER (WHERE status = 'SUCCESS'), count(*), (SELECT count(*) FROM %[1]s.operation_outputs) FROM %[1]s.workflow_status",
		pgx.Identifier{dbosSchema}.Sanitize())
	if err := d.pool.QueryRow(ctx, q).Scan(&succeeded, &all, &outputs); err != nil {
		return err
	}
	if succeeded != total || all != total || outputs != steps*total {
		return fmt.Errorf("workflow_status: %d rows, %d SUCCESS; operation_outputs: %d rows; want %d, %d, %d",
			all, succeeded, outputs, total, total, steps*total)
	}
	return nil
}

func (d *dbosInstance) close(ctx context.Context) error {
	timeout := 30 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	err := dbos.Shutdown(d.dctx, timeout)
	d.pool.Close()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
