-- Upload intents: files a client is putting straight into the bucket.

-- +goose Up
CREATE TABLE uploads (
    id           text COLLATE "C" PRIMARY KEY,
    name         text NOT NULL,
    content_type text NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    key          text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL
);

CREATE INDEX uploads_expires_at ON uploads (expires_at);

-- +goose Down
DROP TABLE uploads;
