package backend_test

import (
	"strings"
	"testing"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage/backend"
	"github.com/example/flystorage/internal/testenv"
)

// TestChoose holds the registry to its rules: one database variable
// selects one driver by its scheme, none selects SQLite, and every other
// case is an error that names the variables and never the password.
func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		want string // driver name, or the variable the error names
		ok   bool
	}{
		{"nothing set", nil, "sqlite", true},
		{"DATABASE_PATH", map[string]string{"DATABASE_PATH": "/data/app.db"}, "sqlite", true},
		{"postgres://", map[string]string{"DATABASE_URL": "postgres://u:" + secret + "@h/db"}, "postgres", true},
		// The guide's own forms: fly secrets set DATABASE_URL=... and MONGODB_URI=...
		{"PlanetScale", map[string]string{"DATABASE_URL": "mysql://user:" + secret + "@host.planetscale.com/dbname?sslmode=require"}, "mysql", true},
		{"Atlas", map[string]string{"MONGODB_URI": "mongodb+srv://user:" + secret + "@cluster.mongodb.net/dbname"}, "mongodb", true},
		{"mongodb://", map[string]string{"MONGODB_URI": "mongodb://user:" + secret + "@127.0.0.1:27017/app"}, "mongodb", true},
		{"MONGODB_URI and DATABASE_URL", map[string]string{"MONGODB_URI": "mongodb://127.0.0.1/app", "DATABASE_URL": "postgres://u:" + secret + "@h/db"}, "DATABASE_URL and MONGODB_URI", false},
		{"MONGODB_URI with a postgres URL", map[string]string{"MONGODB_URI": "postgres://u:" + secret + "@h/db"}, "MONGODB_URI", false},
		{"DIRECT_DATABASE_URL with MySQL", map[string]string{"DATABASE_URL": "mysql://u:" + secret + "@h/db", "DIRECT_DATABASE_URL": "postgres://u@h/db"}, "DIRECT_DATABASE_URL", false},
		{"DATABASE_READ_URL with SQLite", map[string]string{"DATABASE_PATH": "/data/app.db", "DATABASE_READ_URL": "postgres://u:" + secret + "@h:5433/db"}, "DATABASE_READ_URL", false},
		{"DATABASE_READ_URL with MySQL", map[string]string{"DATABASE_URL": "mysql://u:" + secret + "@h/db", "DATABASE_READ_URL": "postgres://u:" + secret + "@h:5433/db"}, "DATABASE_READ_URL", false},
		{"unknown scheme", map[string]string{"DATABASE_URL": "redis://u:" + secret + "@h/0"}, "DATABASE_URL", false},
		{"no scheme", map[string]string{"DATABASE_URL": "u:" + secret + "@h/db"}, "DATABASE_URL", false},
		{"two variables", map[string]string{"DATABASE_URL": "postgres://u:" + secret + "@h/db", "DATABASE_PATH": "/data/app.db"}, "DATABASE_URL and DATABASE_PATH", false},
		// A variable only another database reads would do nothing.
		{"DIRECT_DATABASE_URL with SQLite", map[string]string{"DIRECT_DATABASE_URL": "postgres://u:" + secret + "@h/db"}, "DIRECT_DATABASE_URL", false},
		{"DB_QUERY_EXEC_MODE with SQLite", map[string]string{"DATABASE_PATH": "/data/app.db", "DB_QUERY_EXEC_MODE": "exec"}, "DB_QUERY_EXEC_MODE", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			driver, _, err := backend.Select(env(tc.vars))
			if tc.ok {
				if err != nil || driver.Name != tc.want {
					t.Fatalf("Select = %s, %v; want the %s driver", driver.Name, err, tc.want)
				}
				return
			}
			testenv.WantConfigError(t, err, tc.want, secret)
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

// TestDriversDocumentTheirVariables checks every driver documents the
// variable that selects it, so docs/configuration.md lists it.
func TestDriversDocumentTheirVariables(t *testing.T) {
	documented := map[string]bool{}
	for _, d := range backend.Drivers {
		for _, v := range d.Vars {
			if v.Doc == "" {
				t.Errorf("%s has no description", v.Name)
			}
			documented[v.Name] = true
		}
	}
	for _, d := range backend.Drivers {
		if !documented[d.Var] {
			t.Errorf("the %s driver is selected by %s, which it does not document", d.Name, d.Var)
		}
	}
}

// TestSchemeAlone: a URL that is its scheme and nothing more, such as
// DATABASE_URL=postgres://, selects the driver of that scheme, whose own
// Load names what is missing. It used to be refused as an "unsupported
// scheme" while the message listed that very scheme.
func TestSchemeAlone(t *testing.T) {
	for _, tc := range []struct{ name, value, driver string }{
		{"DATABASE_URL", "postgres://", "postgres"},
		{"DATABASE_URL", "POSTGRESQL://", "postgres"},
		{"DATABASE_URL", "mysql://", "mysql"},
		{"MONGODB_URI", "mongodb://", "mongodb"},
	} {
		d, _, err := backend.Choose(config.NewEnv(env(map[string]string{tc.name: tc.value})))
		if err != nil || d.Name != tc.driver {
			t.Errorf("Choose(%s=%s) = %s, %v; want the %s driver", tc.name, tc.value, d.Name, err, tc.driver)
		}
		_, _, err = backend.Select(env(map[string]string{tc.name: tc.value}))
		testenv.WantConfigError(t, err, tc.name, secret)
		if strings.Contains(err.Error(), "unsupported scheme") {
			t.Errorf("%s=%s: %v, want the driver's own error naming what is missing", tc.name, tc.value, err)
		}
	}
}
