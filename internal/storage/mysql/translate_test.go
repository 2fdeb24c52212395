package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/example/flystorage/internal/storage"
)

// TestTranslate maps driver errors to the storage kinds by type and
// number, including through wrapping.
func TestTranslate(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	read := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, tc := range []struct {
		err     error
		kind    error
		unknown bool // ErrOutcomeUnknown joins the kind
	}{
		{sql.ErrNoRows, storage.ErrNotFound, false},
		{&mysql.MySQLError{Number: 1062}, storage.ErrConflict, false},
		{&mysql.MySQLError{Number: 3819}, storage.ErrInvalid, false},
		{&mysql.MySQLError{Number: 4025}, storage.ErrInvalid, false},
		{&mysql.MySQLError{Number: 1406}, storage.ErrInvalid, false},
		{&mysql.MySQLError{Number: 1366}, storage.ErrInvalid, false},
		{&mysql.MySQLError{Number: 1213}, storage.ErrUnavailable, false},
		{&mysql.MySQLError{Number: 1205}, storage.ErrUnavailable, false},
		{&mysql.MySQLError{Number: 1045}, storage.ErrRefused, false},
		{mysql.ErrNoTLS, storage.ErrRefused, false},
		{driver.ErrBadConn, storage.ErrUnavailable, false},
		{dial, storage.ErrUnavailable, false},
		{mysql.ErrInvalidConn, storage.ErrUnavailable, true},
		{read, storage.ErrUnavailable, true},
		{context.DeadlineExceeded, storage.ErrUnavailable, true},
	} {
		for _, err := range []error{tc.err, fmt.Errorf("wrapped: %w", tc.err)} {
			got := translate(err)
			if !errors.Is(got, tc.kind) || errors.Is(got, storage.ErrOutcomeUnknown) != tc.unknown || !errors.Is(got, tc.err) {
				t.Errorf("translate(%v) = %v; want %v (outcome unknown: %v), keeping the cause", err, got, tc.kind, tc.unknown)
			}
		}
	}
	other := &mysql.MySQLError{Number: 1064} // syntax error: a bug, no kind
	for _, kind := range []error{storage.ErrNotFound, storage.ErrConflict, storage.ErrInvalid, storage.ErrUnavailable, storage.ErrRefused} {
		if errors.Is(translate(other), kind) {
			t.Errorf("translate(syntax error) matches %v", kind)
		}
	}
	if translate(nil) != nil {
		t.Error("translate(nil) != nil")
	}
}
