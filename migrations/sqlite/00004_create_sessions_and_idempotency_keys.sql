-- Browser sessions (when no REDIS_URL keeps them) and the Idempotency-Key
-- of each retried write. Times are TEXT as in 00001.

-- +goose Up
CREATE TABLE sessions (
    id         TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
) STRICT;

CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE idempotency_keys (
    key         TEXT PRIMARY KEY CHECK (length(CAST(key AS BLOB)) BETWEEN 1 AND 255),
    fingerprint TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE sessions;
