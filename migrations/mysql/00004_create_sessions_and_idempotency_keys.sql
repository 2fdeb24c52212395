-- Browser sessions (when no REDIS_URL keeps them) and the Idempotency-Key
-- of each retried write. A key is up to 255 bytes, kept and compared as
-- bytes, exactly as the client sent it.

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS sessions (
    id         VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    INDEX sessions_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS idempotency_keys (
    `key`       VARBINARY(255) NOT NULL PRIMARY KEY,
    fingerprint VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    resource_id VARCHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    created_at  DATETIME(6) NOT NULL,
    CONSTRAINT idempotency_keys_key_length CHECK (LENGTH(`key`) >= 1),
    INDEX idempotency_keys_created_at (created_at)
) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE IF EXISTS idempotency_keys;
DROP TABLE IF EXISTS sessions;
