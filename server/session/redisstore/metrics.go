package redisstore

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"

	"github.com/custodian-bff/custodian/internal/telemetry"
)

// CountErrors counts the failures of client's commands in
// custodian.redis.errors, by command name (a Redis command, such as evalsha
// or get; never a key), so that an operator sees the session store and the
// shared rate limits failing. A missing key (redis.Nil) is no failure.
func CountErrors(client redis.UniversalClient, mp metric.MeterProvider) {
	errs, _ := telemetry.Meter(mp).Int64Counter("custodian.redis.errors",
		metric.WithDescription("Redis commands that failed (connection, timeout or server error), by command."))
	client.AddHook(errorHook{errs: errs})
}

// errorHook is a go-redis hook that counts failed commands.
type errorHook struct{ errs metric.Int64Counter }

func (errorHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h errorHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		h.count(ctx, cmd, err)
		return err
	}
}

func (h errorHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			h.count(ctx, cmd, cmd.Err())
		}
		return err
	}
}

func (h errorHook) count(ctx context.Context, cmd redis.Cmder, err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	// A script not yet loaded is loaded and run again at once; a server
	// that does not know the handshake's CLIENT SETINFO or HELLO is used
	// all the same.
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		return
	}
	if name := cmd.Name(); name == "client" || name == "hello" {
		if _, isRedisErr := errors.AsType[redis.Error](err); isRedisErr {
			return
		}
	}
	h.errs.Add(ctx, 1, metric.WithAttributes(telemetry.Operation.String(cmd.Name())))
}
