package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/ferrygo/ferry/bench/internal/procstat"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

const asynqTask = "bench:noop"

// prepareAsynq checks Redis and describes its persistence settings.
func prepareAsynq(ctx context.Context, o *options) (string, error) {
	rdb := redis.NewClient(&redis.Options{Addr: o.redis, DB: o.redisDB})
	defer rdb.Close()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return "", fmt.Errorf("connect to Redis at %s: %w", o.redis, err)
	}
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return "", err
	}
	version := infoField(info, "redis_version")
	conf := map[string]string{}
	for _, name := range []string{"appendonly", "appendfsync", "save"} {
		kv, err := rdb.ConfigGet(ctx, name).Result()
		if err != nil {
			return "", err
		}
		conf[name] = kv[name]
	}
	return fmt.Sprintf("Redis %s: appendonly=%s, appendfsync=%s, save=%q (DB %d)",
		version, conf["appendonly"], conf["appendfsync"], conf["save"], o.redisDB), nil
}

// infoField reads one field of an INFO reply.
func infoField(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

type asynqInstance struct {
	opt       asynq.RedisClientOpt
	rdb       *redis.Client
	client    *asynq.Client
	server    *asynq.Server
	inspector *asynq.Inspector
}

func startAsynq(ctx context.Context, o *options, s *sink) (instance, error) {
	opt := asynq.RedisClientOpt{Addr: o.redis, DB: o.redisDB}
	rdb := redis.NewClient(&redis.Options{Addr: o.redis, DB: o.redisDB})
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		rdb.Close()
		return nil, err
	}
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: concurrency, LogLevel: asynq.ErrorLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc(asynqTask, func(_ context.Context, t *asynq.Task) error {
		var p payload
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return err
		}
		s.run(&p)
		return nil
	})
	if err := srv.Start(mux); err != nil {
		rdb.Close()
		return nil, err
	}
	return &asynqInstance{opt: opt, rdb: rdb, client: asynq.NewClient(opt), server: srv, inspector: asynq.NewInspector(opt)}, nil
}

func (a *asynqInstance) enqueue(ctx context.Context, p *payload) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	_, err = a.client.EnqueueContext(ctx, asynq.NewTask(asynqTask, data))
	return err
}

// done counts the tasks processed: asynq's done script removes a task
// and counts it in one step.
func (a *asynqInstance) done(context.Context) (int, error) {
	qi, err := a.inspector.GetQueueInfo("default")
	if err != nil {
		return 0, err
	}
	return qi.ProcessedTotal, nil
}

// counters are the commands Redis processed (the whole server's) and
// what redis-server wrote to disk.
func (a *asynqInstance) counters(ctx context.Context) (map[string]float64, error) {
	info, err := a.rdb.Info(ctx, "stats").Result()
	if err != nil {
		return nil, err
	}
	n, err := strconv.ParseFloat(infoField(info, "total_commands_processed"), 64)
	if err != nil {
		return nil, err
	}
	return map[string]float64{"Redis commands": n, "disk write bytes": float64(procstat.WriteBytes("redis-server"))}, nil
}

func (a *asynqInstance) verify(_ context.Context, total int) error {
	qi, err := a.inspector.GetQueueInfo("default")
	if err != nil {
		return err
	}
	if qi.ProcessedTotal != total || qi.FailedTotal != 0 || qi.Size != 0 {
		return fmt.Errorf("queue: %d processed, %d failed, %d left; want %d, 0, 0", qi.ProcessedTotal, qi.FailedTotal, qi.Size, total)
	}
	return nil
}

func (a *asynqInstance) close(context.Context) error {
	a.server.Shutdown()
	err := a.client.Close()
	_ = a.inspector.Close()
	_ = a.rdb.Close()
	return err
}
