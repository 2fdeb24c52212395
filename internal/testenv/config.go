package testenv

import (
	"errors"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/config"
)

// WantConfigError checks that err is a *config.Error naming variable, that
// it exits with status 2 (config.ExitCode), and that its message does not
// hold secret, a password the test put in the environment.
func WantConfigError(t testing.TB, err error, variable, secret string) {
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
