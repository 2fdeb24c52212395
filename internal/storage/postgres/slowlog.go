package postgres

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// slowQueryLog is a pgx tracer that logs statements slower than threshold
// with their duration and SQL text. It never logs the arguments: they hold
// user data.
type slowQueryLog struct {
	threshold time.Duration
	log       *slog.Logger
}

type queryStartKey struct{}

type queryStart struct {
	at  time.Time
	sql string
}

func (l *slowQueryLog) TraceQueryStart(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, queryStartKey{}, queryStart{at: time.Now(), sql: data.SQL})
}

func (l *slowQueryLog) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, data pgx.TraceQueryEndData) {
	start, ok := ctx.Value(queryStartKey{}).(queryStart)
	if !ok {
		return
	}
	if d := time.Since(start.at); d >= l.threshold {
		l.log.Warn("slow query", "duration", d.Round(time.Microsecond), "sql", strings.Join(strings.Fields(start.sql), " "), "failed", data.Err != nil)
	}
}
