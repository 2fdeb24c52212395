package testenv

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// MinIO is a MinIO server of the test's own, for tests that stop it.
type MinIO struct {
	S3
	cmd  *exec.Cmd
	args []string // to start it again on the same port and data
	dir  string
}

// NewMinIO starts the MinIO at TEST_MINIO_BIN on a free port with an empty
// bucket, and stops it when the test ends.
func NewMinIO(t testing.TB) *MinIO {
	t.Helper()
	bin := need(t, "TEST_MINIO_BIN", "the path of a MinIO server binary (scripts/minio.sh builds one)")
	dir := t.TempDir()
	port, console := freePort(t), freePort(t)
	m := &MinIO{S3: S3{
		Endpoint:        fmt.Sprintf("http://127.0.0.1:%d", port),
		AccessKeyID:     "flystorage",
		SecretAccessKey: RandomHex(16),
		Bucket:          "flystorage-test-" + RandomHex(6),
		Region:          "us-east-1",
	}}
	m.args = []string{bin, "server", "--quiet", "--address", fmt.Sprintf("127.0.0.1:%d", port),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", console), filepath.Join(dir, "store")}
	m.dir = dir
	t.Cleanup(m.Stop)
	m.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := m.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &m.Bucket}); err != nil {
		t.Fatalf("creating bucket: %v", err)
	}
	return m
}

// Start starts the server (again, after Stop: same port, same data) and
// waits until it is ready.
func (m *MinIO) Start(t testing.TB) {
	t.Helper()
	m.cmd = exec.Command(m.args[0], m.args[1:]...)
	m.cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+m.AccessKeyID, "MINIO_ROOT_PASSWORD="+m.SecretAccessKey, "MINIO_BROWSER=off")
	log, err := os.OpenFile(filepath.Join(m.dir, "minio.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	m.cmd.Stdout, m.cmd.Stderr = log, log
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("starting MinIO: %v", err)
	}
	dir := m.dir
	if !Eventually(60*time.Second, func() bool {
		var res *http.Response
		if res, err = http.Get(m.Endpoint + "/minio/health/ready"); err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}) {
		out, _ := os.ReadFile(filepath.Join(dir, "minio.log"))
		t.Fatalf("MinIO did not become ready within 60s: %v\n%s", err, out)
	}
}

// Stop kills the server, as a crash or a lost network would.
func (m *MinIO) Stop() {
	if m.cmd != nil && m.cmd.Process != nil && m.cmd.ProcessState == nil {
		m.cmd.Process.Kill()
		m.cmd.Wait()
	}
}
