package engine_test

import (
	"testing"

	"github.com/example/flystorage/internal/storage/engine"
)

// TestPrivateHost lists the hosts every driver trusts with plaintext, and
// the providers' hosts it warns about.
func TestPrivateHost(t *testing.T) {
	for host, want := range map[string]bool{
		"/tmp/mongodb-27017.sock":             true,
		"/var/run/postgresql":                 true,
		"10.0.0.5":                            false, // private, but shared: not ours to trust
		"127.0.0.1":                           true,
		"::1":                                 true,
		"aws.connect.psdb.cloud":              false,
		"cluster0.abcde.mongodb.net":          false,
		"db.project.supabase.co":              false,
		"ep-cool-meadow-123456.aws.neon.tech": false,
		"flystorage-db.flycast":               true,
		"flystorage-db.internal":              true,
		"host.planetscale.com":                false,
		"internal.example.com":                false,
		"localhost":                           true,
		"my-mongo.flycast":                    true,
		"my-mongo.internal":                   true,
		"top2.nearest.of.db.internal.":        true,
	} {
		if got := engine.PrivateHost(host); got != want {
			t.Errorf("PrivateHost(%q) = %v, want %v", host, got, want)
		}
	}
}
