-- key is a blob key, up to S3's 1024 bytes, compared as bytes.

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS files (
    id           VARCHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    sha256       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    `key`        VARBINARY(1024) NOT NULL,
    created_at   DATETIME(6) NOT NULL,
    CONSTRAINT files_key UNIQUE (`key`),
    CONSTRAINT files_size CHECK (size >= 0)
) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE IF EXISTS files;
