-- +goose Up
CREATE TABLE notes (
    id         text COLLATE "C" PRIMARY KEY,
    title      text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    body       text NOT NULL CHECK (octet_length(body) <= 65536),
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);

-- +goose Down
DROP TABLE notes;
