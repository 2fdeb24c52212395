package replication

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// ErrVerify is matched by Verify's errors about the replica itself (as
// opposed to the bucket being unreachable).
var ErrVerify = errors.New("the replica failed verification")

// Verify restores the replica's newest state into a temporary file in
// dir, checks it with PRAGMA integrity_check and for the app's notes
// table, and checks that it holds the TXID the replica's newest file
// names. It returns that state. A replica that holds nothing, cannot be
// restored, or restores to a damaged database fails with an error that
// matches ErrVerify and names the problem.
func (c *Client) Verify(ctx context.Context, dir string) (State, error) {
	newest, err := c.Newest(ctx)
	if err != nil {
		return State{}, err
	}
	if newest.TXID == 0 {
		return State{}, fmt.Errorf("%w: %s holds no LTX files", ErrVerify, c.URL())
	}
	tmp, err := os.MkdirTemp(dir, ".verify-")
	if err != nil {
		return State{}, fmt.Errorf("making a directory to restore into: %w", err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "restored.db")
	restored, err := c.Restore(ctx, RestoreOptions{Output: out, TXID: newest.TXID})
	if err != nil {
		if ctx.Err() != nil {
			return State{}, err
		}
		return State{}, fmt.Errorf("%w: %w", ErrVerify, err)
	}
	if restored.TXID != newest.TXID {
		return State{}, fmt.Errorf("%w: the restore reached TXID %s, but the replica's newest file ends at %s", ErrVerify, restored.TXID, newest.TXID)
	}
	if err := checkRestored(ctx, out); err != nil {
		return State{}, fmt.Errorf("%w: TXID %s of %s: %w", ErrVerify, restored.TXID, c.URL(), err)
	}
	return restored, nil
}

// checkRestored runs PRAGMA integrity_check on the file and makes sure it
// is this app's database.
func checkRestored(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var result string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&result); err != nil {
		return fmt.Errorf("PRAGMA integrity_check: %w", err)
	}
	if result != "ok" {
		return fmt.Errorf("PRAGMA integrity_check: %s", result)
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'notes'").Scan(&n); err != nil {
		return fmt.Errorf("reading the schema: %w", err)
	}
	if n == 0 {
		return errors.New("it is not a flystorage database: it has no notes table")
	}
	return nil
}

// verifyEvery verifies the replica every BACKUP_VERIFY_INTERVAL until
// Close.
func (r *Replicator) verifyEvery() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-r.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(r.opts.Config.VerifyInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.verifyOnce(ctx)
	}
}

// verifyOnce verifies the replica, and records and logs the outcome.
func (r *Replicator) verifyOnce(ctx context.Context) {
	start := time.Now()
	state, err := r.Verify(ctx, filepath.Dir(r.opts.Path))
	switch {
	case ctx.Err() != nil:
	case err != nil:
		r.log.Error("backup verification failed", "replica", r.URL(), "err", err)
	default:
		r.verified.Store(&state)
		r.log.Info("backup verified", "replica", r.URL(), "txid", state.TXID, "committed", state.At, "took", time.Since(start).Round(time.Millisecond))
	}
}
