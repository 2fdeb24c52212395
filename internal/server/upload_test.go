package server_test

import (
	"bytes"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/example/flystorage/internal/server"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/testenv"
)

// TestUploadReadsInLargeChunks: an upload is read from the connection in
// chunks of tens of KiB, not in the 4 KiB that mime/multipart reads by
// itself; every read is a system call and a move of the read deadline.
func TestUploadReadsInLargeChunks(t *testing.T) {
	db, blobs := testenv.LocalStores(t)
	srv := httptest.NewUnstartedServer(server.New(server.Options{
		Service:        service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 4 << 20}),
		MaxUploadBytes: 4 << 20,
	}))
	ln := &countingListener{Listener: srv.Listener}
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	const size = 2 << 20
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	w, _ := mw.CreateFormFile("file", "big.bin")
	w.Write(bytes.Repeat([]byte("flystorage"), size/10))
	mw.Close()
	res, err := http.Post(srv.URL+"/api/files", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %s", res.Status)
	}
	if reads, most := ln.reads.Load(), int64(size/(16<<10)); reads > most {
		t.Errorf("the server read the %d-byte upload in %d reads, want at most %d (16 KiB or more each)", size, reads, most)
	}
}

// countingListener counts the reads of the connections it accepts.
type countingListener struct {
	net.Listener
	reads atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, reads: &l.reads}, nil
}

type countingConn struct {
	net.Conn
	reads *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}
