package replication

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/benbjohnson/litestream"
	"github.com/superfly/ltx"
)

// This file is Litestream's follow loop (Replica.Restore with Follow,
// v0.5.18), driven by us for one reason: Litestream writes each LTX
// file's pages into the copy in place, under an fcntl lock that only
// readers in another process respect. Our readers share its process, so
// here every LTX file is applied while Follower.reads is held for
// writing, and every read of the copy holds it for reading
// (sqlite.OpenFollower): no read sees half a transaction.

// follow applies the replica's new transactions to the copy every
// SQLITE_SYNC_INTERVAL until ctx ends.
func (f *Follower) follow(ctx context.Context, txid ltx.TXID) {
	tick := time.NewTicker(f.opts.Config.SyncInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		next, err := f.applyNew(ctx, txid)
		if err != nil && ctx.Err() == nil {
			f.log.Error("following the replica: applying its new transactions", "replica", f.URL(), "txid", txid, "err", err)
		}
		txid = next
	}
}

// applyNew applies the transactions after txid, one LTX file at a time,
// and returns the copy's transaction. Like Litestream's follow mode it
// reads level 0, and the higher levels only when level 0 has nothing
// that follows txid (compaction removed the files in between): one LIST
// a round while transactions arrive.
func (f *Follower) applyNew(ctx context.Context, txid ltx.TXID) (ltx.TXID, error) {
	for level := 0; level < litestream.SnapshotLevel; level++ {
		infos, err := f.following(ctx, level, txid)
		if err != nil {
			return txid, err
		}
		for _, info := range infos {
			if err := f.applyLTX(ctx, info); err != nil {
				return txid, fmt.Errorf("applying %s (level %d): %w", ltx.FormatFilename(info.MinTXID, info.MaxTXID), info.Level, err)
			}
			txid = info.MaxTXID
		}
		if len(infos) > 0 {
			return txid, nil
		}
	}
	return txid, nil
}

// following returns the level's LTX files that take the copy on from
// txid without a gap, oldest first.
func (f *Follower) following(ctx context.Context, level int, txid ltx.TXID) ([]*ltx.FileInfo, error) {
	seek := ltx.TXID(0)
	if level == 0 {
		seek = txid + 1
	}
	itr, err := f.ls.LTXFiles(ctx, level, seek, false)
	if err != nil {
		return nil, fmt.Errorf("listing level %d: %w", level, err)
	}
	var infos []*ltx.FileInfo
	for itr.Next() {
		info := itr.Item()
		if info.MinTXID > txid+1 {
			break
		}
		if info.MaxTXID > txid {
			infos = append(infos, info)
			txid = info.MaxTXID
		}
	}
	if err := errors.Join(itr.Err(), itr.Close()); err != nil {
		return nil, fmt.Errorf("listing level %d: %w", level, err)
	}
	return infos, nil
}

// applyLTX writes one LTX file's pages into the copy, holding reads for
// writing, and records its TXID beside it. The file is downloaded first,
// so reads wait for the writes alone. Page 1 then says rollback-journal
// mode (the writer's says WAL), and its change counter is new after every
// file, so a SQLite connection that kept pages from before drops them.
func (f *Follower) applyLTX(ctx context.Context, info *ltx.FileInfo) error {
	rc, err := f.ls.OpenLTXFile(ctx, info.Level, info.MinTXID, info.MaxTXID, 0, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	local, err := os.CreateTemp(filepath.Dir(f.opts.Path), ".follow-*.ltx")
	if err != nil {
		return err
	}
	defer os.Remove(local.Name())
	defer local.Close()
	if _, err := io.Copy(local, rc); err != nil {
		return fmt.Errorf("downloading: %w", err)
	}
	if _, err := local.Seek(0, io.SeekStart); err != nil {
		return err
	}
	dec := ltx.NewDecoder(bufio.NewReader(local))
	if err := dec.DecodeHeader(); err != nil {
		return err
	}
	hdr := dec.Header()
	out, err := os.OpenFile(f.opts.Path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer out.Close()

	f.reads.Lock()
	err = writePages(out, dec, hdr.PageSize, hdr.Commit)
	if err == nil {
		err = markCopy(out)
	}
	f.reads.Unlock()
	if err != nil {
		return err
	}
	// The TXID beside the copy never names more than the disk holds.
	if err := errors.Join(dec.Close(), out.Sync()); err != nil {
		return err
	}
	return litestream.WriteTXIDFile(f.opts.Path, info.MaxTXID)
}

// writePages writes the decoder's pages into out, each at its place,
// and cuts out to commit pages.
func writePages(out *os.File, dec *ltx.Decoder, pageSize, commit uint32) error {
	data := make([]byte, pageSize)
	for {
		var ph ltx.PageHeader
		if err := dec.DecodePage(&ph, data); err == io.EOF {
			break
		} else if err != nil {
			return err
		}
		if _, err := out.WriteAt(data, int64(ph.Pgno-1)*int64(pageSize)); err != nil {
			return err
		}
	}
	if commit > 0 {
		return out.Truncate(int64(commit) * int64(pageSize))
	}
	return nil
}

// markCopy gives the copy's page 1 rollback-journal mode and a new
// change counter.
func markCopy(out *os.File) error {
	if _, err := out.WriteAt([]byte{1, 1}, 18); err != nil {
		return err
	}
	var counter [4]byte
	rand.Read(counter[:])
	_, err := out.WriteAt(counter[:], 24)
	return err
}
