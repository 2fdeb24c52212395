package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/example/flystorage/internal/testenv"
)

// s3App starts the app on SQLite and a bucket of the test's own, with extra
// variables.
func s3App(t *testing.T, extra map[string]string) (*testApp, testenv.S3) {
	t.Helper()
	bucket := testenv.S3Bucket(t)
	env := bucket.Env()
	env["DATABASE_PATH"] = filepath.Join(t.TempDir(), "app.db")
	env["MAX_UPLOAD_BYTES"] = fmt.Sprint(uploadLimit)
	for k, v := range extra {
		env[k] = v
	}
	return startApp(t, env), bucket
}

func localApp(t *testing.T, extra map[string]string) *testApp {
	t.Helper()
	env := map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "app.db"), "MAX_UPLOAD_BYTES": fmt.Sprint(uploadLimit)}
	for k, v := range extra {
		env[k] = v
	}
	return startApp(t, env)
}

// fileLink uploads data and returns the file's id and its /url answer.
func fileLink(t *testing.T, a *testApp, data []byte) (string, map[string]any) {
	t.Helper()
	r := a.upload(t, "report final.pdf", "application/pdf", data)
	expect(t, "upload", r, 201)
	link := a.get(t, "/api/files/"+r.id()+"/url")
	expect(t, "file url", link, 200)
	return r.id(), link.json(t)
}

// fetch GETs a URL with a plain HTTP client, as a browser would.
func fetch(t *testing.T, rawURL string) response {
	t.Helper()
	res, err := client.Get(rawURL)
	if err != nil {
		t.Fatalf("GET %s: %v", rawURL, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// tamper changes the last character of the URL's signature.
func tamper(t *testing.T, rawURL, param string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	sig := q.Get(param)
	if sig == "" {
		t.Fatalf("URL %s has no %s", rawURL, param)
	}
	last := "0"
	if strings.HasSuffix(sig, "0") {
		last = "1"
	}
	q.Set(param, sig[:len(sig)-1]+last)
	u.RawQuery = q.Encode()
	return u.String()
}

// moveClock moves the clock of the apps the test runs (runApp) by d until
// the test ends.
func moveClock(t *testing.T, d time.Duration) {
	old := testNow
	testNow = func() time.Time { return time.Now().Add(d) }
	t.Cleanup(func() { testNow = old })
}

// testLink fetches a download link, a tampered copy and, once it has
// expired, the link again.
func testLink(t *testing.T, a *testApp, sigParam string) {
	data := randomData(200 << 10)
	id, link := fileLink(t, a, data)
	raw, _ := link["url"].(string)
	expires, err := time.Parse(time.RFC3339, fmt.Sprint(link["expires_at"]))
	if err != nil || time.Until(expires) > time.Minute {
		t.Fatalf("expires_at %v is not a near RFC 3339 time", link["expires_at"])
	}
	r := fetch(t, raw)
	if r.status != 200 || !bytes.Equal(r.body, data) {
		t.Fatalf("GET of the link: %d, %d bytes; want 200 and the upload", r.status, len(r.body))
	}
	if cd := r.header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") || !strings.Contains(cd, "report final.pdf") {
		t.Errorf("link's Content-Disposition = %q", cd)
	}
	if r := fetch(t, tamper(t, raw, sigParam)); r.status != 403 {
		t.Errorf("tampered link: %d, want 403", r.status)
	}
	// Expired, without waiting: the app checks its own links on its clock,
	// which moves past the expiry; the store checks presigned links on its
	// own, so the app signs one as if an hour ago.
	if sigParam == "signature" {
		moveClock(t, time.Until(expires)+time.Hour)
	} else {
		moveClock(t, -time.Hour)
		l := a.get(t, "/api/files/"+id+"/url")
		expect(t, "file url an hour ago", l, 200)
		raw, _ = l.json(t)["url"].(string)
	}
	if r := fetch(t, raw); r.status != 403 {
		t.Errorf("expired link: %d, want 403", r.status)
	}
}

func TestPresignedDownload(t *testing.T) {
	a, _ := s3App(t, map[string]string{"PRESIGN_TTL": "2s"})
	testLink(t, a, "X-Amz-Signature")
}

// TestPublicEndpoint has the app reach MinIO as 127.0.0.1 and browsers as
// localhost, like docker-compose's minio:9000 and localhost:9000: presigned
// URLs name the store as the browser reaches it, and work.
func TestPublicEndpoint(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	public := strings.Replace(bucket.Endpoint, "127.0.0.1", "localhost", 1)
	a, _ := s3App(t, map[string]string{"S3_PUBLIC_ENDPOINT": public})
	data := randomData(1000)
	_, link := fileLink(t, a, data)
	if !strings.HasPrefix(link["url"].(string), public+"/") {
		t.Errorf("link %v does not use S3_PUBLIC_ENDPOINT %s", link["url"], public)
	}
	if r := fetch(t, link["url"].(string)); r.status != 200 || !bytes.Equal(r.body, data) {
		t.Errorf("GET through the public endpoint: %d, %d bytes", r.status, len(r.body))
	}
	expect(t, "direct upload through the public endpoint", directUpload(t, a, "d.bin", "application/octet-stream", data), 201)
}

func TestSignedLocalDownload(t *testing.T) {
	a := localApp(t, map[string]string{"PRESIGN_TTL": "2s"})
	// A HEAD on the link answers what its GET would, without the body.
	data := randomData(1234)
	_, link := fileLink(t, a, data)
	head := a.do(t, "HEAD", link["url"].(string), "", nil)
	if head.status != 200 || head.header.Get("Content-Length") != "1234" || len(head.body) != 0 {
		t.Errorf("HEAD on a signed link: %d, Content-Length %q, %d bytes of body", head.status, head.header.Get("Content-Length"), len(head.body))
	}
	testLink(t, a, "signature")
}

// TestPublicURL makes a bucket readable by anyone, as `fly storage create
// --public` does, and fetches a file from its public URL.
func TestPublicURL(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, bucket.Bucket)
	if _, err := bucket.Client().PutBucketPolicy(context.Background(), &s3.PutBucketPolicyInput{Bucket: &bucket.Bucket, Policy: &policy}); err != nil {
		t.Fatalf("making the bucket public: %v", err)
	}
	env := bucket.Env()
	env["DATABASE_PATH"] = filepath.Join(t.TempDir(), "app.db")
	env["BUCKET_PUBLIC"] = "true"
	env["BUCKET_PUBLIC_URL"] = bucket.Endpoint + "/" + bucket.Bucket
	a := startApp(t, env)
	data := randomData(1000)
	id, link := fileLink(t, a, data)
	if link["url"] != bucket.Endpoint+"/"+bucket.Bucket+"/files/"+id || link["expires_at"] != nil {
		t.Errorf("public link = %v, want %s/%s/files/%s that never expires", link, bucket.Endpoint, bucket.Bucket, id)
	}
	if r := fetch(t, link["url"].(string)); r.status != 200 || !bytes.Equal(r.body, data) {
		t.Errorf("GET of the public URL: %d, %d bytes", r.status, len(r.body))
	}

	// Unset, the base follows the endpoint in use: on MinIO, the bucket's
	// path there (Tigris's endpoints are checked offline in
	// internal/storage/backend's TestLoadS3).
	env["BUCKET_PUBLIC_URL"] = ""
	env["DATABASE_PATH"] = filepath.Join(t.TempDir(), "app.db")
	b := startApp(t, env)
	id, link = fileLink(t, b, data)
	if want := bucket.Endpoint + "/" + bucket.Bucket + "/files/" + id; link["url"] != want {
		t.Errorf("default public link = %v, want %s", link["url"], want)
	}
	if r := fetch(t, link["url"].(string)); r.status != 200 || !bytes.Equal(r.body, data) {
		t.Errorf("GET of the default public URL: %d, %d bytes", r.status, len(r.body))
	}
}

// directUpload runs the browser's side of a direct upload: ask, PUT, complete.
func directUpload(t *testing.T, a *testApp, name, contentType string, data []byte) response {
	t.Helper()
	r, _ := directUploadURL(t, a, name, contentType, data)
	return r
}

// directUploadURL is directUpload that also returns the URL the bytes went
// to, with its headers.
func directUploadURL(t *testing.T, a *testApp, name, contentType string, data []byte) (response, []string) {
	t.Helper()
	r := a.sendJSON(t, "POST", "/api/files/uploads", fmt.Sprintf(`{"name":%q,"content_type":%q,"size":%d}`, name, contentType, len(data)))
	expect(t, "start upload", r, 201)
	intent := r.json(t)
	if intent["method"] != "PUT" || intent["id"] == "" {
		t.Fatalf("upload intent %s", r.body)
	}
	var headers []string
	for k, v := range intent["headers"].(map[string]any) {
		headers = append(headers, k, v.(string))
	}
	put := a.do(t, "PUT", intent["url"].(string), "", bytes.NewReader(data), headers...)
	expect(t, "PUT to the upload URL", put, 200)
	return a.sendJSON(t, "POST", "/api/files/uploads/"+intent["id"].(string)+"/complete", ""), append([]string{intent["url"].(string)}, headers...)
}

func testDirectUpload(t *testing.T, a *testApp) {
	data := randomData(900 << 10)
	sum := sha256.Sum256(data)
	r, put := directUploadURL(t, a, "clip.mp4", "video/mp4", data)
	expect(t, "complete", r, 201)
	// The upload URL works until it expires, but a PUT after completion
	// must not replace the file's bytes (S3 takes it at a staging key; the
	// app refuses it for local files).
	a.do(t, "PUT", put[0], "", bytes.NewReader(randomData(len(data))), put[1:]...)
	if d := a.get(t, "/api/files/"+r.id()+"/content"); !bytes.Equal(d.body, data) {
		t.Errorf("a PUT to the upload URL after completion replaced the file's bytes")
	}
	f := r.json(t)
	if f["size"] != float64(len(data)) || f["sha256"] != hex.EncodeToString(sum[:]) || f["content_type"] != "video/mp4" || f["name"] != "clip.mp4" {
		t.Errorf("completed file %s", r.body)
	}
	if d := a.get(t, "/api/files/"+f["id"].(string)+"/content"); !bytes.Equal(d.body, data) {
		t.Errorf("download of a direct upload: %d bytes", len(d.body))
	}
	expect(t, "complete again", a.sendJSON(t, "POST", "/api/files/uploads/"+f["id"].(string)+"/complete", ""), 200)

	expectError(t, "upload over MAX_UPLOAD_BYTES", a.sendJSON(t, "POST", "/api/files/uploads", fmt.Sprintf(`{"name":"big","content_type":"video/mp4","size":%d}`, 3*uploadLimit)), 413, "too_large")
	expectError(t, "upload without a size", a.sendJSON(t, "POST", "/api/files/uploads", `{"name":"x"}`), 400, "invalid")
	expectError(t, "complete an unknown upload", a.sendJSON(t, "POST", "/api/files/uploads/01a20f9f-09cd-7584-a6ae-16e2b0ac4721/complete", ""), 404, "not_found")

	r = a.sendJSON(t, "POST", "/api/files/uploads", `{"name":"n.txt","content_type":"text/plain","size":5}`)
	expect(t, "start upload", r, 201)
	intent := r.json(t)
	expectError(t, "complete before the PUT", a.sendJSON(t, "POST", "/api/files/uploads/"+intent["id"].(string)+"/complete", ""), 400, "invalid")
	// The URL is for exactly 5 bytes of text/plain: anything else is refused.
	if put := a.do(t, "PUT", intent["url"].(string), "", strings.NewReader("too long!"), "Content-Type", "text/plain"); put.status < 400 {
		t.Errorf("PUT of 9 bytes to a URL signed for 5: %d, want refused", put.status)
	}
	if put := a.do(t, "PUT", intent["url"].(string), "", strings.NewReader("hello"), "Content-Type", "image/png"); put.status < 400 {
		t.Errorf("PUT of another content type: %d, want refused", put.status)
	}
}

func TestDirectUploadS3(t *testing.T) {
	a, _ := s3App(t, nil)
	testDirectUpload(t, a)

	// Past S3's 5 GiB copy limit, a direct upload is refused up front.
	big, _ := s3App(t, map[string]string{"MAX_UPLOAD_BYTES": fmt.Sprint(int64(8 << 30))})
	r := big.sendJSON(t, "POST", "/api/files/uploads", fmt.Sprintf(`{"name":"huge","content_type":"video/mp4","size":%d}`, int64(6<<30)))
	expectError(t, "a 6 GiB direct upload", r, 413, "too_large")
	if !strings.Contains(string(r.body), "POST /api/files") {
		t.Errorf("413 for a 6 GiB direct upload does not say what to do instead: %s", r.body)
	}
}

func TestDirectUploadLocal(t *testing.T) { testDirectUpload(t, localApp(t, nil)) }

// TestExpiredUploadIsSwept leaves an upload uncompleted past its expiry:
// the sweep removes its object and the intent, and it cannot be completed.
func TestExpiredUploadIsSwept(t *testing.T) {
	env := map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "app.db"), "PRESIGN_TTL": "1s"}
	a := startApp(t, env)
	r := a.sendJSON(t, "POST", "/api/files/uploads", `{"name":"n.txt","content_type":"text/plain","size":5}`)
	expect(t, "start upload", r, 201)
	intent := r.json(t)
	expect(t, "PUT", a.do(t, "PUT", intent["url"].(string), "", strings.NewReader("hello"), "Content-Type", "text/plain"), 200)
	moveClock(t, 2*time.Second) // past the intent's expiry, for the server and the sweep

	var out bytes.Buffer
	if err := runApp(context.Background(), []string{"sweep"}, func(k string) string { return env[k] }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "removed 1 expired uploads;") {
		t.Errorf("app sweep printed %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(env["DATABASE_PATH"]), "blobs", "files", intent["id"].(string))); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the expired upload's object is still stored: %v", err)
	}
	expectError(t, "complete after the sweep", a.sendJSON(t, "POST", "/api/files/uploads/"+intent["id"].(string)+"/complete", ""), 404, "not_found")
}

// TestBadCredentials gives the app a wrong secret key: uploads answer 502
// with a message that says what to check, and never the key.
func TestBadCredentials(t *testing.T) {
	// Files only: a replicated database does not start with a wrong key
	// (TestReplicationBucketDown).
	a, _ := s3App(t, map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong-Secret-5521", "SQLITE_REPLICATION": "off"})
	r := a.upload(t, "a.txt", "text/plain", []byte("hi"))
	expectError(t, "upload with a wrong secret key", r, 502, "bad_gateway")
	if !strings.Contains(string(r.body), "AWS_SECRET_ACCESS_KEY") || !strings.Contains(string(r.body), "SignatureDoesNotMatch") || strings.Contains(string(r.body), "wrong-Secret-5521") {
		t.Errorf("502 body %s: want the variables to check and S3's code, never the key", r.body)
	}
	if files := a.get(t, "/api/files").json(t)["files"].([]any); len(files) != 0 {
		t.Errorf("a refused upload left %d rows", len(files))
	}
	assertNoSecrets(t, a, "wrong-Secret-5521")
}

// TestMinIOStopsDuringUpload kills the store while an upload streams: the
// upload answers 503 and no file is listed.
func TestMinIOStopsDuringUpload(t *testing.T) {
	m := testenv.NewMinIO(t)
	env := m.Env()
	env["DATABASE_PATH"] = filepath.Join(t.TempDir(), "app.db")
	env["S3_TIMEOUT"] = "2s"
	env["S3_PART_SIZE"] = "5MiB"
	a := startApp(t, env)

	pr, pw := io.Pipe()
	boundary := "flystorage-test-boundary"
	go func() {
		fmt.Fprintf(pw, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n", boundary)
		pw.Write(make([]byte, 6<<20)) // past the first part
		m.Stop()
		pw.Write(make([]byte, 6<<20))
		fmt.Fprintf(pw, "\r\n--%s--\r\n", boundary)
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", a.url+"/api/files", pr)
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 503 {
		t.Errorf("upload with the store killed midway: %d %s, want 503", res.StatusCode, body)
	}
	if files := a.get(t, "/api/files").json(t)["files"].([]any); len(files) != 0 {
		t.Errorf("the failed upload left %d rows", len(files))
	}
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}
