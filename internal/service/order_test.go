package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	s3store "github.com/example/flystorage/internal/storage/s3"
	"github.com/example/flystorage/internal/testenv"
)

// rowDeleteFails is a database whose DeleteFile fails as a database that
// went away would.
type rowDeleteFails struct{ storage.Database }

func (rowDeleteFails) DeleteFile(context.Context, string) (storage.File, error) {
	return storage.File{}, fmt.Errorf("%w: connection refused", storage.ErrUnavailable)
}

// TestDeleteFileRowFirst: DeleteFile removes the row before the object, so
// when the row's delete fails the file is still listed and its bytes are
// still served, on every backend.
func TestDeleteFileRowFirst(t *testing.T) {
	run(t, func(t *testing.T, open stores) {
		s, _ := newService(t, open)
		ctx := context.Background()
		f, err := s.Upload(ctx, service.NewFile{Name: "a.txt", ContentType: "text/plain", Body: strings.NewReader("still here")})
		if err != nil {
			t.Fatal(err)
		}
		failing := service.New(service.Options{DB: rowDeleteFails{s.DB()}, Blobs: s.Blobs(), KeyPrefix: "files/", MaxUpload: 1 << 20})
		if err := failing.DeleteFile(ctx, f.ID); !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("DeleteFile with the database down = %v, want ErrUnavailable", err)
		}
		got, err := s.GetFile(ctx, f.ID)
		if err != nil {
			t.Fatalf("the file after a failed delete: %v", err)
		}
		if b := content(t, s, got); string(b) != "still here" {
			t.Errorf("the file's bytes after a failed delete: %q", b)
		}
	})
}

// putAfterCopy is a bucket in which a client's PUT lands at the staging
// key right after the complete's copy: what the complete then hashes must
// be the kept copy, not the staging object. It keeps the bucket's
// presigning and copying (storage.Presigner), which a wrapper of
// storage.Blobs alone would hide.
type putAfterCopy struct {
	*s3store.Bucket
	staging string
	other   []byte
}

func (b *putAfterCopy) Copy(ctx context.Context, src, dst string) error {
	if err := b.Bucket.Copy(ctx, src, dst); err != nil {
		return err
	}
	if src == b.staging {
		return b.Bucket.Put(ctx, src, bytes.NewReader(b.other), int64(len(b.other)), "text/plain")
	}
	return nil
}

// TestPutAfterCopyPostgresMinIO is TestPutRacingComplete on Postgres and
// MinIO: a PUT to the staging key right after the copy does not change
// what the recorded SHA-256 describes.
func TestPutAfterCopyPostgresMinIO(t *testing.T) {
	db, _ := backends["postgres+s3"](t)
	racing := &putAfterCopy{Bucket: testenv.S3Bucket(t).Blobs(t), other: bytes.Repeat([]byte("B"), 100)}
	var _ storage.Presigner = racing
	s := service.New(service.Options{DB: db, Blobs: racing, KeyPrefix: "files/", MaxUpload: 1 << 20})
	data := bytes.Repeat([]byte("A"), 100)
	u, target, err := s.StartUpload(context.Background(), service.NewUpload{Name: "r", ContentType: "text/plain", Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	racing.staging = u.Key
	put(t, s, u, target, data)
	f, _, err := s.CompleteUpload(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := s.Blobs().Get(context.Background(), f.Key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	kept, _ := io.ReadAll(r)
	if !bytes.Equal(kept, data) {
		t.Errorf("the kept copy holds %q, want the bytes put before the complete", kept)
	}
	content(t, s, f) // the recorded SHA-256 describes the kept bytes
}
