package backend

import (
	"github.com/example/flystorage/internal/storage/engine"
	"github.com/example/flystorage/internal/storage/mongodb"
	"github.com/example/flystorage/internal/storage/mysql"
	"github.com/example/flystorage/internal/storage/postgres"
	"github.com/example/flystorage/internal/storage/sqlite"
)

// Drivers are the databases the app runs on. Exactly one of their
// variables may be set; the driver whose Var is set, and whose Schemes
// take its value, opens the database. Adding a database is its package
// and one line here (docs/architecture.md, "Adding a backend").
var Drivers = []engine.Driver{
	postgres.Driver, // DATABASE_URL=postgres://...
	mysql.Driver,    // DATABASE_URL=mysql://... (PlanetScale)
	mongodb.Driver,  // MONGODB_URI=mongodb+srv://... (Atlas)
	sqlite.Driver,   // DATABASE_PATH=/data/app.db
}

// Default is the driver when no database variable is set: SQLite under
// ./data, so `go run ./cmd/app` works with nothing set.
var Default = sqlite.Driver
