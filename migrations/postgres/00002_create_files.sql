-- +goose Up
CREATE TABLE files (
    id           text COLLATE "C" PRIMARY KEY,
    name         text NOT NULL,
    content_type text NOT NULL,
    size         bigint NOT NULL CHECK (size >= 0),
    sha256       text NOT NULL,
    key          text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL
);

-- +goose Down
DROP TABLE files;
