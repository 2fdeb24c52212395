package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/benbjohnson/litestream"
	lss3 "github.com/benbjohnson/litestream/s3"
	"github.com/superfly/ltx"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/sqlite"
)

// bigDB fills a new SQLite database at path, with the app's schema, with
// notes of 64 KiB bodies until it holds about size bytes. The bodies are
// random letters, so that LTX's compression does not shrink them away.
func bigDB(args []string) error {
	f := flag.NewFlagSet("bigdb", flag.ContinueOnError)
	path := f.String("path", "", "the database to make")
	size := f.Int64("bytes", 1<<30, "about how large")
	if err := f.Parse(args); err != nil {
		return err
	}
	st, err := sqlite.Open(context.Background(), *path)
	if err != nil {
		return err
	}
	st.Close()
	db, err := sql.Open("sqlite", "file:"+*path+"?_journal_mode=WAL&_synchronous=OFF")
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	const bodySize = 64 << 10
	rng := rand.New(rand.NewPCG(1, 2))
	body := make([]byte, bodySize)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	for done := int64(0); done < *size; {
		tx, err := db.Begin()
		if err != nil {
			return err
		}
		for range 256 {
			for i := range body {
				body[i] = 'a' + byte(rng.IntN(26))
			}
			if _, err := tx.Exec(`INSERT INTO notes (id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
				storage.NewID(), "a large note", string(body), now, now); err != nil {
				tx.Rollback()
				return err
			}
			done += bodySize
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	_, err = db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}

// restoreFigure times `app restore --output` of the replica under prefix
// against downloading the same LTX files (the restore's plan) to one
// file, with the same S3 client Litestream uses: the restore adds
// decoding them into a database and its checks.
func restoreFigure(args []string) error {
	f := flag.NewFlagSet("restore", flag.ContinueOnError)
	app := f.String("app", "", "the app binary")
	dir := f.String("dir", "", "a scratch directory")
	endpoint := f.String("s3-endpoint", "", "the S3 endpoint")
	bucket := f.String("bucket", "", "the bucket")
	prefix := f.String("prefix", "", "the replica's prefix")
	if err := f.Parse(args); err != nil {
		return err
	}
	ctx := context.Background()
	// Litestream's S3 client cannot take AWS_CA_BUNDLE (its HTTP client
	// has no transport options); the bench's MinIO is plain HTTP anyway.
	os.Unsetenv("AWS_CA_BUNDLE")
	c := lss3.NewReplicaClient()
	c.Bucket, c.Path, c.Endpoint, c.Region, c.ForcePathStyle = *bucket, *prefix, *endpoint, "us-east-1", true
	c.AccessKeyID, c.SecretAccessKey = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if err := c.Init(ctx); err != nil {
		return err
	}
	plan, err := litestream.CalcRestorePlan(ctx, c, 0, time.Time{}, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("planning the restore: %w", err)
	}
	var ltxBytes int64
	for _, info := range plan {
		ltxBytes += info.Size
	}

	out := filepath.Join(*dir, "restored.db")
	cmd := exec.CommandContext(ctx, *app, "restore", "--output", out)
	cmd.Env = append(os.Environ(), "DATABASE_PATH="+filepath.Join(*dir, "live.db"), "BUCKET_NAME="+*bucket,
		"AWS_ENDPOINT_URL_S3="+*endpoint, "AWS_REGION=us-east-1", "SQLITE_REPLICA_PREFIX="+*prefix)
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("app restore: %w: %s", err, strings.TrimSpace(string(msg)))
	}
	restoreTook := time.Since(start)
	st, err := os.Stat(out)
	if err != nil {
		return err
	}

	start = time.Now()
	if err := download(ctx, c, plan, filepath.Join(*dir, "download.ltx")); err != nil {
		return err
	}
	downloadTook := time.Since(start)

	mib := float64(ltxBytes) / (1 << 20)
	r := result{path: "litestream restore", ceiling: "GET of the same LTX files", unit: "MiB/s", target: 0.8, extraOK: true,
		app: mib / restoreTook.Seconds(), ceil: mib / downloadTook.Seconds(),
		extra: fmt.Sprintf("  (%d LTX files, %.0f MiB, to a %.0f MiB database: %.1fs against %.1fs)",
			len(plan), mib, float64(st.Size())/(1<<20), restoreTook.Seconds(), downloadTook.Seconds())}
	r.print()
	if failed > 0 {
		return fmt.Errorf("%d checks failed", failed)
	}
	return nil
}

// download copies the plan's LTX files, one after another, into one file
// at path and syncs it.
func download(ctx context.Context, c *lss3.ReplicaClient, plan []*ltx.FileInfo, path string) error {
	out, err := os.Create(path)
	if err != nil {
		return err
	}
	defer out.Close()
	for _, info := range plan {
		rc, err := c.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return out.Sync()
}
