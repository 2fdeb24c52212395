-- Times are TEXT in one fixed-width UTC format (2006-01-02T15:04:05.000000Z),
-- so they sort as text and read back exactly.

-- +goose Up
CREATE TABLE notes (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body       TEXT NOT NULL CHECK (length(CAST(body AS BLOB)) <= 65536),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
) STRICT;

-- +goose Down
DROP TABLE notes;
