// Package engine is what the database engine packages (postgres, mysql,
// mongodb, sqlite) share and the domain does not: the Driver value each
// exports for the registry (internal/storage/backend/registry.go), and
// small helpers for paging, plaintext warnings and the SQL engines'
// NamedKeys rows. It keeps package storage free of database/sql and of
// the configuration's types.
package engine

import (
	"database/sql"
	"errors"
	"net"
	"strings"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
)

// Driver is one database engine. Each backend package exports one
// (postgres.Driver, mysql.Driver, mongodb.Driver, sqlite.Driver), and
// internal/storage/backend/registry.go lists them: the driver whose Var is
// set, and whose Schemes match its value, opens the database. Nothing else
// in the app switches on the engine.
type Driver struct {
	// Name is the engine, as logs, /api/storage and the page show it.
	Name string
	// Var is the variable that selects the driver: DATABASE_URL,
	// MONGODB_URI or DATABASE_PATH. The registry refuses two set at once.
	Var string
	// Schemes are the URL schemes of Var's value the driver takes, such as
	// "postgres" and "postgresql"; none takes any value (a file path).
	Schemes []string
	// Local says the database is a file on this machine's volume: every
	// machine has its own, so files and backups in a shared bucket are kept
	// per machine, and machines outside the primary region replay to it.
	Local bool
	// Vars documents the variables the driver reads besides Var, for
	// docs/configuration.md and .env.example.
	Vars []config.Var
	// Load reads the driver's configuration: value is Var's (empty for the
	// default driver when nothing is set), getenv reads the rest. It checks
	// everything it can without a network, and its errors are
	// *config.Error values naming the variable and never holding a secret.
	Load func(value string, getenv func(string) string) (storage.Source, error)
}

// ScanNamedKeys reads the rows of a SQL engine's NamedKeys query, (id,
// key) with a NULL key for an upload intent, into files and uploads, and
// closes them.
func ScanNamedKeys(rows *sql.Rows, files map[string]string, uploads map[string]bool) error {
	defer rows.Close()
	for rows.Next() {
		var id string
		var key sql.NullString
		if err := rows.Scan(&id, &key); err != nil {
			return err
		}
		if key.Valid {
			files[id] = key.String
		} else {
			uploads[id] = true
		}
	}
	return errors.Join(rows.Err(), rows.Close())
}

// PrivateHost reports whether a database host is reached without crossing
// a network anyone else shares: a Unix socket, loopback, or Fly's private
// network (.internal, .flycast), which WireGuard already encrypts. Drivers
// warn about plaintext connections to any other host.
func PrivateHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if strings.HasPrefix(host, "/") || strings.HasSuffix(host, ".sock") || host == "localhost" ||
		strings.HasSuffix(host, ".internal") || strings.HasSuffix(host, ".flycast") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// Cut trims a page fetched with limit+1 rows to limit and returns the cursor
// of the next page, or "" when this page is the last.
func Cut[T any](rows []T, limit int, id func(T) string) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	rows = rows[:limit]
	return rows, id(rows[limit-1])
}
