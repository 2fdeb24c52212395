package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite"

	"github.com/example/flystorage/internal/config"
	"github.com/example/flystorage/internal/storage"
)

// The ceilings: what the drivers alone do on this machine, with none of
// the app around them.

// bareSQLite is modernc.org/sqlite alone: one INSERT per transaction on one
// writer connection, with the app's pragmas (WAL, synchronous=NORMAL).
type bareSQLite struct{ db *sql.DB }

func openBareSQLite(path string) (*bareSQLite, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	_, err = db.Exec(`CREATE TABLE IF NOT EXISTS notes (id TEXT PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT NULL,
		created_at TEXT NOT NULL, updated_at TEXT NOT NULL) STRICT`)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &bareSQLite{db: db}, nil
}

func (b *bareSQLite) insert(ctx context.Context, rng *rand.Rand) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	if _, err := tx.ExecContext(ctx, `INSERT INTO notes (id, title, body, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
		storage.NewID(), fmt.Sprintf("note %d", rng.Uint32()), "a benchmark note with a short body", now, now); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// barePostgres is a pgxpool alone, in pgx's default (statement caching)
// mode and with the app's default pool size, on the app's notes table.
type barePostgres struct {
	pool *pgxpool.Pool
	ids  []string
}

func openBarePostgres(ctx context.Context, url string) (*barePostgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = config.DefaultMaxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &barePostgres{pool: pool}, nil
}

func (b *barePostgres) insert(ctx context.Context, rng *rand.Rand) error {
	now := time.Now().UTC().Truncate(time.Microsecond)
	_, err := b.pool.Exec(ctx, `INSERT INTO notes (id, title, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
		storage.NewID(), fmt.Sprintf("note %d", rng.Uint32()), "a benchmark note with a short body", now, now)
	return err
}

func (b *barePostgres) selectByID(ctx context.Context, rng *rand.Rand) error {
	rows, _ := b.pool.Query(ctx, `SELECT id, title, body, created_at, updated_at FROM notes WHERE id = $1`, b.ids[rng.IntN(len(b.ids))])
	_, err := pgx.CollectExactlyOneRow(rows, func(r pgx.CollectableRow) (storage.Note, error) {
		var n storage.Note
		err := r.Scan(&n.ID, &n.Title, &n.Body, &n.CreatedAt, &n.UpdatedAt)
		return n, err
	})
	return err
}

// bareS3 is the SDK's transfer manager alone, with the app's part size
// and concurrency.
type bareS3 struct {
	uploader *transfermanager.Client
	client   *s3.Client
	bucket   string
}

func openBareS3(endpoint, bucket string, partSize int64, concurrency int) (*bareS3, error) {
	if err := loopback(endpoint); err != nil {
		return nil, err
	}
	client := s3.New(s3.Options{
		BaseEndpoint:               aws.String(endpoint),
		Region:                     "us-east-1",
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		HTTPClient:                 &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
	})
	uploader := transfermanager.New(client, func(o *transfermanager.Options) {
		o.PartSizeBytes, o.MultipartUploadThreshold = partSize, partSize
		if concurrency > 0 {
			o.Concurrency = concurrency
		}
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.DisableChecksumValidation = true
	})
	return &bareS3{uploader: uploader, client: client, bucket: bucket}, nil
}

// put uploads the file part of the upload file and returns MiB/s.
func (b *bareS3) put(ctx context.Context, key string, file *uploadFile) (float64, error) {
	f, err := file.open()
	if err != nil {
		return 0, err
	}
	defer f.Close()
	start := time.Now()
	if _, err := b.uploader.UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket: &b.bucket, Key: &key, Body: file.data(f),
	}); err != nil {
		return 0, fmt.Errorf("SDK upload: %w", err)
	}
	mibs := float64(file.size) / (1 << 20) / time.Since(start).Seconds()
	_, err = b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.bucket, Key: &key})
	return mibs, err
}

// newRandom returns a fast stream of incompressible bytes, the same for
// every upload.
func newRandom() io.Reader { return rand.NewChaCha8([32]byte{1}) }

// peakRSS reads VmHWM, the peak resident set size, of a process.
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// rmbucket empties and removes the benchmark's bucket.
func rmbucket(args []string) error {
	f := flag.NewFlagSet("rmbucket", flag.ContinueOnError)
	endpoint := f.String("s3-endpoint", "", "MinIO's URL")
	bucket := f.String("bucket", "", "the bucket")
	if err := f.Parse(args); err != nil {
		return err
	}
	b, err := openBareS3(*endpoint, *bucket, 8<<20, 0)
	if err != nil {
		return err
	}
	ctx := context.Background()
	pages := s3.NewListObjectsV2Paginator(b.client, &s3.ListObjectsV2Input{Bucket: bucket})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if _, err := b.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: o.Key}); err != nil {
				return err
			}
		}
	}
	_, err = b.client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: bucket})
	return err
}
