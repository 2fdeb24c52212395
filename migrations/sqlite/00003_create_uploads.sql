-- Upload intents: files a client is putting straight into the bucket.

-- +goose Up
CREATE TABLE uploads (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    key          TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
) STRICT;

CREATE INDEX uploads_expires_at ON uploads (expires_at);

-- +goose Down
DROP TABLE uploads;
