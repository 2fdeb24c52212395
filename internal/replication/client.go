// Package replication keeps a SQLite database in the bucket with
// Litestream, embedded: every transaction is shipped to the bucket as it
// commits, an empty volume is restored from there before the app serves,
// and one machine at a time writes, holding a lease on the replica
// (docs/sqlite.md). Litestream does the mechanism; this package decides
// the policy: when to restore, who writes, and when a write counts as
// durable.
package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/benbjohnson/litestream"
	lss3 "github.com/benbjohnson/litestream/s3"
	"github.com/superfly/ltx"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage/s3"
	"github.com/example/flystorage/internal/storage/sqlite"
)

// Options say what to replicate, where to, and as whom.
type Options struct {
	Config Config
	// S3 is the bucket (BUCKET_NAME and the AWS_* variables).
	S3 config.S3
	// Path is the database file (DATABASE_PATH).
	Path string
	// Machine is this machine's id, the lease's owner: FLY_MACHINE_ID on
	// Fly, the hostname elsewhere.
	Machine string
	// Follow makes Open return a *HeldError, instead of waiting, when
	// another machine holds the lease.
	Follow bool
	Logger *slog.Logger
}

// Client reaches the replica in the bucket: it restores and verifies it,
// and needs no lease to do so.
type Client struct {
	opts   Options
	ls     *lss3.ReplicaClient
	bucket *s3.Bucket // for the lease
	log    *slog.Logger
}

// NewClient builds the client. It does not contact the bucket.
func NewClient(ctx context.Context, o Options) (*Client, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ls := lss3.NewReplicaClient()
	ls.Bucket, ls.Path = o.S3.Bucket, o.Config.Prefix
	ls.Endpoint, ls.Region, ls.ForcePathStyle = o.S3.Endpoint, o.S3.Region, o.S3.PathStyle
	ls.AccessKeyID, ls.SecretAccessKey = o.S3.AccessKeyID, o.S3.SecretAccessKey
	ls.SetLogger(o.Logger)
	if err := initClient(ctx, ls); err != nil {
		return nil, fmt.Errorf("opening the replica %s: %w", o.url(), err)
	}
	bucket, err := s3.New(ctx, s3.Options{Bucket: o.S3.Bucket, Endpoint: o.S3.Endpoint, Region: o.S3.Region,
		AccessKeyID: o.S3.AccessKeyID, SecretAccessKey: o.S3.SecretAccessKey, PathStyle: o.S3.PathStyle, Timeout: o.S3.Timeout})
	if err != nil {
		return nil, fmt.Errorf("opening bucket %s: %w", o.S3.Bucket, err)
	}
	return &Client{opts: o, ls: ls, bucket: bucket, log: o.Logger}, nil
}

// initMu keeps two initClient calls from hiding AWS_CA_BUNDLE from each
// other.
var initMu sync.Mutex

// initClient initialises Litestream's S3 client with AWS_CA_BUNDLE hidden
// from it. Its Init gives the SDK an HTTP client the SDK cannot add a CA
// bundle to, and fails with "unable to add custom RootCAs HTTPClient"
// whenever the variable is set; without it, the client trusts the
// system's roots (SSL_CERT_FILE and SSL_CERT_DIR), which Tigris's
// certificate chains to. Init only builds the client, so the variable is
// hidden for no request.
func initClient(ctx context.Context, c *lss3.ReplicaClient) error {
	initMu.Lock()
	defer initMu.Unlock()
	if v, ok := os.LookupEnv("AWS_CA_BUNDLE"); ok {
		os.Unsetenv("AWS_CA_BUNDLE")
		defer os.Setenv("AWS_CA_BUNDLE", v)
	}
	return c.Init(ctx)
}

func (o Options) url() string { return "s3://" + o.S3.Bucket + "/" + o.Config.Prefix }

// LeaseHolder returns the machine id the replica's lease names, and
// whether it is still in force; "" when there is no lease.
func (c *Client) LeaseHolder(ctx context.Context) (string, bool, error) {
	lease, _, err := readLease(ctx, c.bucket, c.opts.S3.Bucket, c.opts.Config.Prefix)
	if err != nil || lease == nil {
		return "", false, err
	}
	return lease.Owner, !lease.IsExpired(), nil
}

// URL is where the replica lives: s3://bucket/prefix.
func (c *Client) URL() string { return c.opts.url() }

// State is a transaction of the replica: its id and when it was
// committed (when its LTX file reached the bucket).
type State struct {
	TXID ltx.TXID
	At   time.Time

	// file is the LTX file that ends at TXID, for checksum.
	file *ltx.FileInfo
}

// Newest returns the newest transaction the replica holds, at any level;
// a zero State when it holds none.
func (c *Client) Newest(ctx context.Context) (State, error) {
	var s State
	for level := 0; level <= litestream.SnapshotLevel; level++ {
		itr, err := c.ls.LTXFiles(ctx, level, 0, false)
		if err != nil {
			return s, fmt.Errorf("listing the replica %s: %w", c.URL(), err)
		}
		for itr.Next() {
			if info := itr.Item(); info.MaxTXID > s.TXID {
				copied := *info
				s = State{TXID: info.MaxTXID, At: info.CreatedAt, file: &copied}
			}
		}
		if err := itr.Close(); err != nil {
			return s, fmt.Errorf("listing the replica %s: %w", c.URL(), err)
		}
	}
	return s, nil
}

// fileChecksum returns the checksum of the LTX file that ends at the
// state's transaction: the same file, uploaded from the volume that wrote
// it, has the same one.
func (c *Client) fileChecksum(ctx context.Context, s State) (ltx.Checksum, error) {
	rc, err := c.ls.OpenLTXFile(ctx, s.file.Level, s.file.MinTXID, s.file.MaxTXID, 0, 0)
	if err != nil {
		return 0, fmt.Errorf("reading the replica's newest file: %w", err)
	}
	defer rc.Close()
	return ltxChecksum(rc)
}

// ltxChecksum reads a whole LTX file and returns its checksum.
func ltxChecksum(r io.Reader) (ltx.Checksum, error) {
	dec := ltx.NewDecoder(r)
	if err := dec.Verify(); err != nil {
		return 0, err
	}
	return dec.Trailer().FileChecksum, nil
}

// ErrNoReplica is returned by Restore when the bucket holds no replica
// (or none reaching back to the time asked for).
var ErrNoReplica = errors.New("the bucket holds no replica")

// RestoreOptions say which state to restore, and where.
type RestoreOptions struct {
	// Output is the file to write; it must not exist.
	Output string
	// Timestamp, if set, restores the database as it was then; zero
	// restores the newest state.
	Timestamp time.Time
	// TXID, if set, restores up to that transaction.
	TXID ltx.TXID
}

// Restore writes the replica's database to o.Output, which must not
// exist, and returns the state it restored. It fails with an error
// matching ErrNoReplica when the bucket holds nothing to restore. The
// file is written beside Output and renamed into place (restore.go); the
// checksums of every LTX file and of the database it makes are checked,
// so the file holds exactly the pages the writer had. (Verify also runs
// PRAGMA integrity_check on what it restores.)
func (c *Client) Restore(ctx context.Context, o RestoreOptions) (State, error) {
	infos, err := litestream.CalcRestorePlan(ctx, c.ls, o.TXID, o.Timestamp, c.log)
	switch {
	case errors.Is(err, litestream.ErrTxNotAvailable), errors.Is(err, litestream.ErrNoSnapshots):
		return State{}, fmt.Errorf("%w at %s: %w", ErrNoReplica, c.URL(), err)
	case err != nil:
		return State{}, fmt.Errorf("planning the restore from %s: %w", c.URL(), err)
	}
	last := infos[len(infos)-1]
	state := State{TXID: last.MaxTXID, At: last.CreatedAt}
	if err := c.restoreTo(ctx, o.Output, infos); err != nil {
		return State{}, fmt.Errorf("restoring %s at TXID %s to %s: %w", c.URL(), state.TXID, o.Output, err)
	}
	// The TXID the file holds, for the writer that opens it next
	// (position).
	if err := litestream.WriteTXIDFile(o.Output, state.TXID); err != nil {
		return State{}, err
	}
	return state, nil
}

// removeLocalState deletes what Litestream keeps beside the database at
// path: its LTX files and the restored TXID. A database restored, or
// replaced, must not be replicated from the old ones.
func removeLocalState(path string) error {
	dir, file := filepath.Split(path)
	return errors.Join(os.RemoveAll(filepath.Join(dir, "."+file+litestream.MetaDirSuffix)),
		ignoreMissing(os.Remove(litestream.TXIDPath(path))))
}

func ignoreMissing(err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// localState is where the database on the volume stands.
type localState struct {
	TXID ltx.TXID
	// FileChecksum is the checksum of Litestream's newest LTX file on the
	// volume; 0 after a restore, before Litestream wrote one.
	FileChecksum ltx.Checksum
}

// position returns the newest transaction the database at path holds, as
// far as its Litestream state beside it says: its newest LTX file while
// it was being replicated, or the TXID a restore wrote. ok is false when
// neither exists: the file was never replicated from or to here.
func position(path string) (st localState, ok bool, err error) {
	db := litestream.NewDB(path)
	defer db.Close(context.Background())
	minTXID, maxTXID, err := db.MaxLTX()
	if err != nil {
		return st, false, fmt.Errorf("reading Litestream's files beside %s: %w", path, err)
	}
	if maxTXID != 0 {
		f, err := os.Open(db.LTXPath(0, minTXID, maxTXID))
		if err != nil {
			return st, false, err
		}
		defer f.Close()
		sum, err := ltxChecksum(f)
		if err != nil {
			return st, false, fmt.Errorf("reading Litestream's newest file beside %s: %w", path, err)
		}
		return localState{TXID: maxTXID, FileChecksum: sum}, true, nil
	}
	txid, err := litestream.ReadTXIDFile(path)
	return localState{TXID: txid}, txid != 0, err
}

// ReplaceDatabase puts the database restored to tmp in path's place. The
// database it replaces, with its write-ahead log, is kept as
// path + sqlite.BeforeRestoreSuffix + a time until the app next opens the
// restored one, and Litestream's state beside it goes: the next writer
// replicates from the restored TXID. The caller holds
// sqlite.LockExclusive(path).
func ReplaceDatabase(path, tmp string) error {
	old := path + sqlite.BeforeRestoreSuffix + time.Now().UTC().Format("20060102T150405.000Z")
	for _, suffix := range []string{"", "-wal"} {
		if err := os.Rename(path+suffix, old+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("keeping the database being replaced: %w", err)
		}
	}
	if err := errors.Join(ignoreMissing(os.Remove(path+"-shm")), removeLocalState(path)); err != nil {
		return err
	}
	if err := os.Rename(litestream.TXIDPath(tmp), litestream.TXIDPath(path)); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
