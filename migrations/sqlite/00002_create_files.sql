-- +goose Up
CREATE TABLE files (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         INTEGER NOT NULL CHECK (size >= 0),
    sha256       TEXT NOT NULL,
    key          TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE files;
