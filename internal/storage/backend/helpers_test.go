package backend_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/config"
)

// secret is a password distinctive enough that finding it in any output
// means a secret leaked.
const secret = "s3cr3tpw"

// env returns a getenv that reads vars and nothing else, so the tests never
// depend on the environment they run in.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

// wantError checks that err is a *config.Error naming variable, that it exits
// with status 2, and that its message holds no password.
func wantError(t *testing.T, err error, variable string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one naming %s", variable)
	}
	var cerr *config.Error
	if !errors.As(err, &cerr) {
		t.Fatalf("got %T (%v), want *config.Error", err, err)
	}
	if !strings.Contains(cerr.Var, variable) || !strings.Contains(err.Error(), variable) {
		t.Errorf("error %q (Var %q) does not name %s", err, cerr.Var, variable)
	}
	if got := config.ExitCode(err); got != 2 {
		t.Errorf("ExitCode(%v) = %d, want 2", err, got)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("error %q contains the password %q", err, secret)
	}
}
