-- Upload intents: files a client is putting straight into the bucket.

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS uploads (
    id           VARCHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    `key`        VARBINARY(1024) NOT NULL,
    created_at   DATETIME(6) NOT NULL,
    expires_at   DATETIME(6) NOT NULL,
    CONSTRAINT uploads_key UNIQUE (`key`),
    CONSTRAINT uploads_size CHECK (size >= 0),
    INDEX uploads_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE IF EXISTS uploads;
