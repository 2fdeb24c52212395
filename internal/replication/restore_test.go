package replication

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// TestRestorePlanOfManyFiles restores a replica whose plan is a snapshot
// and the transactions after it, each its own LTX file: the file holds
// every row, passes integrity_check, and its TXID is the newest.
func TestRestorePlanOfManyFiles(t *testing.T) {
	w := newTestWriter(t)
	w.insert(5)
	w.exec("DELETE FROM t WHERE id = 2") // a page written twice
	w.exec("VACUUM")                     // the file shrinks: commit falls
	out := filepath.Join(t.TempDir(), "restored.db")
	st, err := w.Restore(context.Background(), RestoreOptions{Output: out})
	if err != nil {
		t.Fatal(err)
	}
	if files := levelFiles(t, w.Client, 0); len(files) < 3 {
		t.Fatalf("level 0 holds %d files: the plan should have many", len(files))
	}
	want, _ := w.db.Pos()
	if st.TXID != want.TXID {
		t.Errorf("restored TXID %s, want the writer's %s", st.TXID, want.TXID)
	}
	checkDatabase(t, out, w.rows-1)
}

// TestRestoreRefusesACorruptFile: a file of the plan with one byte
// changed in the bucket fails the restore, naming the file, and leaves no
// database behind.
func TestRestoreRefusesACorruptFile(t *testing.T) {
	ctx := context.Background()
	w := newTestWriter(t)
	w.insert(3)
	files := levelFiles(t, w.Client, 0)
	last := files[len(files)-1]
	rc, err := w.ls.OpenLTXFile(ctx, 0, last.MinTXID, last.MaxTXID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	b[ltx.HeaderSize+ltx.PageHeaderSize+8] ^= 0xff // in the first page's data
	if _, err := w.ls.WriteLTXFile(ctx, 0, last.MinTXID, last.MaxTXID, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "restored.db")
	_, err = w.Restore(ctx, RestoreOptions{Output: out})
	if name := ltx.FormatFilename(last.MinTXID, last.MaxTXID); err == nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("restoring with %s corrupt = %v, want an error naming it", name, err)
	}
	if matches, _ := filepath.Glob(out + "*"); len(matches) > 0 {
		t.Errorf("the failed restore left %v", matches)
	}
}

// TestRestorePlansAgainWhenAFileVanishes: when retention deletes a file
// of the plan (compacted into level 1) before the restore reads it, the
// restore starts over on a new plan for the same TXID and succeeds.
func TestRestorePlansAgainWhenAFileVanishes(t *testing.T) {
	ctx := context.Background()
	w := newTestWriter(t)
	w.insert(4)
	plan, err := litestream.CalcRestorePlan(ctx, w.ls, 0, time.Time{}, w.log)
	if err != nil {
		t.Fatal(err)
	}
	compactor := litestream.NewCompactor(w.ls, w.log)
	if _, err := compactor.Compact(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// Its second file goes once the first is written, as retention
	// would take it (oldest first) while a restore runs.
	if len(plan) < 3 {
		t.Fatalf("the plan has %d files, want a snapshot and more", len(plan))
	}
	if err := w.ls.DeleteLTXFiles(ctx, plan[1:2]); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "restored.db")
	if err := w.restoreTo(ctx, out, plan); err != nil {
		t.Fatal(err)
	}
	checkDatabase(t, out, w.rows)
}

// TestBackgroundWriter: what goes in comes out in order, across many
// buffers and writes of every size; a failed write is Close's error.
func TestBackgroundWriter(t *testing.T) {
	want := make([]byte, 3<<20+17)
	rand.Read(want)
	path := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newBackgroundWriter(f, 64<<10, 3)
	for p, n := want, 1; len(p) > 0; n = n*3 + 1 {
		n = min(n%(200<<10), len(p))
		w.Write(p[:n])
		p = p[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, want) {
		t.Errorf("the file holds %d bytes, not the %d written in order", len(got), len(want))
	}

	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	w = newBackgroundWriter(ro, 64<<10, 3)
	w.Write(want)
	if err := w.Close(); err == nil {
		t.Error("writing to a read-only file: Close = nil, want the write's error")
	}
}

// TestRestoreResumesACutDownload: when the connection to the bucket
// breaks in the middle of a file (a proxy here cuts every connection
// after 256 KiB), the restore asks for the rest of the file from where it
// stopped, and the database is whole.
func TestRestoreResumesACutDownload(t *testing.T) {
	ctx := context.Background()
	w := newTestWriter(t)
	blob := make([]byte, 1<<20)
	rand.Read(blob)
	w.exec(fmt.Sprintf("INSERT INTO t (v) VALUES ('big'), (x'%x')", blob)) // ~1 MiB that LZ4 cannot shrink
	w.rows += 2

	cut := cuttingProxy(t, strings.TrimPrefix(w.bucket.Endpoint, "http://"), 256<<10)
	o := w.options(filepath.Join(t.TempDir(), "unused.db"))
	o.S3.Endpoint = "http://" + cut.addr
	c, err := NewClient(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "restored.db")
	if _, err := c.Restore(ctx, RestoreOptions{Output: out}); err != nil {
		t.Fatalf("restore through connections cut every 256 KiB: %v", err)
	}
	if cut.cuts.Load() == 0 {
		t.Fatal("the proxy cut no connection: the test tested nothing")
	}
	checkDatabase(t, out, w.rows)
}

// cutProxy forwards TCP connections to a server and closes each one
// after it has carried limit bytes back to the client.
type cutProxy struct {
	addr string
	cuts atomic.Int64
}

func cuttingProxy(t *testing.T, server string, limit int64) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &cutProxy{addr: ln.Addr().String()}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer client.Close()
				upstream, err := net.Dial("tcp", server)
				if err != nil {
					return
				}
				defer upstream.Close()
				go io.Copy(upstream, client)
				if n, _ := io.CopyN(client, upstream, limit); n == limit {
					p.cuts.Add(1)
				}
			}()
		}
	}()
	return p
}
