-- Browser sessions (when no REDIS_URL keeps them) and the Idempotency-Key
-- of each retried write.

-- +goose Up
CREATE TABLE sessions (
    id         text COLLATE "C" PRIMARY KEY,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE idempotency_keys (
    key         text COLLATE "C" PRIMARY KEY CHECK (octet_length(key) BETWEEN 1 AND 255),
    fingerprint text NOT NULL,
    resource_id text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
DROP TABLE sessions;
