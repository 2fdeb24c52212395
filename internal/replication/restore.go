package replication

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// This file restores a replica: Litestream plans which LTX files make the
// state asked for (litestream.CalcRestorePlan), and ltx decodes them. Our
// part is the order: the plan's snapshot is streamed from the bucket
// straight into the database file, then each later file's pages are
// written over it. Litestream's Replica.Restore instead merges the plan
// into one new LTX stream (decoding, checksumming and LZ4-compressing
// every page once more) and decodes that, which made a 1 GiB restore a
// third as fast as downloading it (docs/performance.md).

// restorePlanAttempts bounds how often a restore starts over after a
// file of its plan vanished (Litestream's compaction and retention
// delete files as they supersede them), as Litestream's does.
const restorePlanAttempts = 3

// restoreTo writes the database in the plan's state to path, which must
// not exist, through a file beside it renamed into place. The decoder
// checks each LTX file's checksum (CRC-64 of the whole file) as it reads
// it; Litestream v0.5.18 writes no checksum of the database itself
// (HeaderFlagNoChecksum), so there is none to compare the result with.
func (c *Client) restoreTo(ctx context.Context, path string, plan []*ltx.FileInfo) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("%s exists", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	defer out.Close()

	target := plan[len(plan)-1].MaxTXID
	for attempt := 1; ; attempt++ {
		err = c.applyPlan(ctx, out, plan)
		if !errors.Is(err, os.ErrNotExist) || attempt == restorePlanAttempts {
			break
		}
		c.log.Info("a file of the restore's plan is gone (compacted): planning again", "replica", c.URL(), "txid", target, "err", err)
		if plan, err = litestream.CalcRestorePlan(ctx, c.ls, target, time.Time{}, c.log); err != nil {
			return fmt.Errorf("planning the restore again: %w", err)
		}
		if err := out.Truncate(0); err != nil {
			return err
		}
		if _, err := out.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	if err := errors.Join(out.Sync(), out.Close()); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// applyPlan writes the plan's files into out, oldest first.
func (c *Client) applyPlan(ctx context.Context, out *os.File, plan []*ltx.FileInfo) error {
	for i, info := range plan {
		if err := c.applyFile(ctx, out, info, i == 0); err != nil {
			return fmt.Errorf("restoring %s (level %d): %w", ltx.FormatFilename(info.MinTXID, info.MaxTXID), info.Level, err)
		}
	}
	return nil
}

// applyFile streams one LTX file from the bucket into out: the snapshot
// as the whole database, any other file page by page. The decoder checks
// the file's checksum as it reaches the end.
func (c *Client) applyFile(ctx context.Context, out *os.File, info *ltx.FileInfo, snapshot bool) error {
	rc := &resumingReader{ctx: ctx, c: c, info: info}
	defer rc.Close()
	dec := ltx.NewDecoder(bufio.NewReaderSize(rc, 1<<20))
	if snapshot {
		w := newBackgroundWriter(out, 1<<20, 4)
		return errors.Join(dec.DecodeDatabaseTo(w), w.Close())
	}
	if err := dec.DecodeHeader(); err != nil {
		return err
	}
	hdr := dec.Header()
	if err := writePages(out, dec, hdr.PageSize, hdr.Commit); err != nil {
		return err
	}
	return dec.Close()
}

// resumingReader reads an LTX file from the bucket; when the connection
// breaks before the end of the file, it asks for the rest from where it
// stopped (a range GET), as Litestream's restore does (its reader is
// internal to its module). It gives up after resumeAttempts breaks in a
// row with no byte read between them.
type resumingReader struct {
	ctx    context.Context
	c      *Client
	info   *ltx.FileInfo
	body   io.ReadCloser
	offset int64
	breaks int
}

const resumeAttempts = 5

func (r *resumingReader) Read(p []byte) (int, error) {
	for {
		if r.body == nil {
			body, err := r.c.ls.OpenLTXFile(r.ctx, r.info.Level, r.info.MinTXID, r.info.MaxTXID, r.offset, 0)
			if err != nil {
				return 0, err
			}
			r.body = body
		}
		n, err := r.body.Read(p)
		r.offset += int64(n)
		if n > 0 {
			r.breaks = 0
		}
		complete := r.info.Size == 0 || r.offset >= r.info.Size
		if err == nil || (err == io.EOF && complete) || r.ctx.Err() != nil {
			return n, err
		}
		// The connection broke (an error, or EOF short of the size).
		r.body.Close()
		r.body = nil
		if r.breaks++; r.breaks > resumeAttempts {
			return n, fmt.Errorf("the download broke %d times at byte %d of %d: %w", r.breaks, r.offset, r.info.Size, err)
		}
		r.c.log.Info("the download of an LTX file broke: resuming", "file", ltx.FormatFilename(r.info.MinTXID, r.info.MaxTXID), "offset", r.offset, "err", err)
		if n > 0 {
			return n, nil
		}
	}
}

func (r *resumingReader) Close() error {
	if r.body == nil {
		return nil
	}
	return r.body.Close()
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// backgroundWriter writes to a file from a goroutine of its own, a
// buffer at a time, so that the decoder checksums the next pages while
// the kernel copies the last ones in (a third of a restore's time, when
// done in turn). Close it to write the rest and learn the first error.
type backgroundWriter struct {
	buf   []byte
	full  chan []byte // buffers to write, in order
	empty chan []byte // buffers to fill
	done  chan struct{}
	err   error // read after done closes
}

// newBackgroundWriter writes to out through n buffers of size bytes.
func newBackgroundWriter(out *os.File, size, n int) *backgroundWriter {
	w := &backgroundWriter{full: make(chan []byte, n), empty: make(chan []byte, n), done: make(chan struct{})}
	for range n - 1 {
		w.empty <- make([]byte, 0, size)
	}
	w.buf = make([]byte, 0, size)
	go func() {
		defer close(w.done)
		for b := range w.full {
			if w.err == nil {
				_, w.err = out.Write(b)
			}
			w.empty <- b[:0]
		}
	}()
	return w
}

func (w *backgroundWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		m := copy(w.buf[len(w.buf):cap(w.buf)], p)
		w.buf, p = w.buf[:len(w.buf)+m], p[m:]
		if len(w.buf) == cap(w.buf) {
			w.full <- w.buf
			w.buf = <-w.empty
		}
	}
	return n, nil
}

func (w *backgroundWriter) Close() error {
	if len(w.buf) > 0 {
		w.full <- w.buf
	}
	close(w.full)
	<-w.done
	return w.err
}
