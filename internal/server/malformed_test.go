package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/testenv"
)

// TestMalformedBodiesAre400 is issue 14's defect 4: request bodies broken
// by the client answer 400 naming the problem, never 500.
func TestMalformedBodiesAre400(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	svc := service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20})
	srv := httptest.NewServer(server.New(server.Options{Service: svc, MaxUploadBytes: 1 << 20}))
	defer srv.Close()

	multipartWith := func(partHeader string) string {
		body := "--b\r\n" + partHeader + "\r\n\r\nhello\r\n--b--\r\n"
		return "POST /api/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n" +
			"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}
	for name, raw := range map[string]string{
		"NUL in a part header":       multipartWith("Content-Disposition: form-data; name=\"file\"; filename=\"a\x00b\""),
		"part header without colon":  multipartWith("Content-Disposition form-data"),
		"bad chunk size":             "POST /api/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n--b\r\n0\r\n\r\n",
		"file part cut by bad chunk": "POST /api/files HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n4a\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello hello\r\nzz\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			if status := rawStatus(t, srv, raw, false); status != http.StatusBadRequest {
				t.Errorf("answered %d, want 400", status)
			}
		})
	}

	t.Run("signed PUT shorter than its Content-Length, then half-closed", func(t *testing.T) {
		// The app's signed URL for the PUT, as createUpload makes it.
		res, err := http.Post(srv.URL+"/api/files/uploads", "application/json",
			strings.NewReader(`{"name":"s","content_type":"text/plain","size":10}`))
		if err != nil {
			t.Fatal(err)
		}
		var intent struct{ URL string }
		json.NewDecoder(res.Body).Decode(&intent)
		res.Body.Close()
		path := strings.TrimPrefix(intent.URL, srv.URL)
		raw := "PUT " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nshort"
		if status := rawStatus(t, srv, raw, true); status != http.StatusBadRequest {
			t.Errorf("answered %d, want 400", status)
		}
	})
}

// rawStatus sends raw on a connection of its own (half-closing it when
// asked) and returns the status of the answer.
func rawStatus(t *testing.T, srv *httptest.Server, raw string, halfClose bool) int {
	t.Helper()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, raw)
	if halfClose {
		conn.(*net.TCPConn).CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	res.Body.Close()
	return res.StatusCode
}

// downDB is a database that is down, whose driver's error names its host
// and user, as pgx's do.
type downDB struct{ storage.Database }

func (downDB) Ping(context.Context) error {
	return errors.Join(storage.ErrUnavailable, errors.New("failed to connect to `user=app database=prod`: db.internal:5432: connection refused"))
}

// TestReadyzSaysNoDriverWords is issue 14's defect 8: /readyz answers
// anyone, so a failing check says what kind of failure it is and never the
// driver's words, which name hosts, users and databases.
func TestReadyzSaysNoDriverWords(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	svc := service.New(service.Options{DB: downDB{db}, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20})
	srv := httptest.NewServer(server.New(server.Options{Service: svc, MaxUploadBytes: 1 << 20}))
	defer srv.Close()
	res, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "unreachable") {
		t.Errorf("readyz = %d %s, want 503 saying the database is unreachable", res.StatusCode, body)
	}
	for _, leak := range []string{"db.internal", "user=app", "prod", "5432"} {
		if strings.Contains(string(body), leak) {
			t.Errorf("readyz shows %q: %s", leak, body)
		}
	}
}

// TestNULInANoteIs400 is issue 14's defect 3: Postgres's text cannot hold
// NUL, where SQLite can; every engine now gets the same answer, 400 naming
// the character, before the database is asked.
func TestNULInANoteIs400(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	svc := service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20})
	srv := httptest.NewServer(server.New(server.Options{Service: svc, MaxUploadBytes: 1 << 20}))
	defer srv.Close()
	for _, body := range []string{`{"title":"x\u0000y","body":"ok"}`, `{"title":"x","body":"a\u0000b"}`} {
		res, err := http.Post(srv.URL+"/api/notes", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), "NUL") {
			t.Errorf("%s answered %d %s, want 400 naming the NUL character", body, res.StatusCode, msg)
		}
	}
}
