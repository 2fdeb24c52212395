-- MySQL 8, MariaDB and PlanetScale (Vitess): InnoDB, utf8mb4, no foreign
-- keys. Ids compare and sort bytewise (utf8mb4_bin), as on the other
-- engines, so `ORDER BY id` is creation order. Times are DATETIME(6) in
-- UTC: the app writes and reads them in UTC.
--
-- MySQL commits before and after each CREATE or DROP, so a transaction
-- around a migration would protect nothing: these run without one, and
-- with IF [NOT] EXISTS, so that a migration cut off halfway can run again.

-- +goose NO TRANSACTION
-- +goose Up
CREATE TABLE IF NOT EXISTS notes (
    id         VARCHAR(36) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL PRIMARY KEY,
    title      TEXT NOT NULL,
    body       MEDIUMTEXT NOT NULL,
    created_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NOT NULL,
    CONSTRAINT notes_title_length CHECK (CHAR_LENGTH(title) BETWEEN 1 AND 200),
    CONSTRAINT notes_body_size CHECK (LENGTH(body) <= 65536)
) ENGINE = InnoDB DEFAULT CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;

-- +goose Down
DROP TABLE IF EXISTS notes;
