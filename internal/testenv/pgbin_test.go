package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPgBinOffPATH: Debian keeps initdb and pg_ctl in
// /usr/lib/postgresql/<version>/bin, off PATH; pgBin finds them there.
func TestPgBinOffPATH(t *testing.T) {
	installed, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(installed) == 0 {
		t.Fatal("no /usr/lib/postgresql/<version>/bin/initdb on this machine: install Debian's postgresql package")
	}
	t.Setenv("PATH", t.TempDir())
	for _, name := range []string{"initdb", "pg_ctl"} {
		path, err := pgBin(name)
		if err != nil {
			t.Fatalf("pgBin(%s) with an empty PATH: %v", name, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode()&0o111 == 0 {
			t.Errorf("pgBin(%s) = %s, not an executable (%v)", name, path, err)
		}
	}
	if _, err := pgBin("no-such-postgres-tool"); err == nil {
		t.Error("pgBin found a tool that does not exist")
	}
}
