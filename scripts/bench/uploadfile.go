package main

import (
	"bufio"
	"fmt"
	"io"
	"mime/multipart"
	"os"
)

// uploadFile is the file both uploads send: the multipart/form-data body
// of POST /api/files, whose file part holds the size bytes that the bare
// SDK uploads. It is written once, before either is timed. The app gets
// the whole file as the request body, which net/http sends with sendfile,
// so the load generator costs next to nothing: a client that makes,
// encodes and copies every byte (1.8 CPU seconds per GiB here, against
// 0.5 for curl) takes that CPU from the app it measures on two cores.
type uploadFile struct {
	path        string
	contentType string
	dataOff     int64 // where the file part's bytes start
	size        int64 // how many there are
	total       int64 // the whole body
}

// writeUploadFile writes the upload's body to a new file in dir: the
// multipart header, size incompressible bytes and the closing boundary.
// The file is synced, so that its writeback does not overlap the first
// timed upload; the caller removes it.
func writeUploadFile(dir string, size int64) (_ *uploadFile, err error) {
	f, err := os.CreateTemp(dir, "upload-*.bin")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	mw := multipart.NewWriter(w)
	// written flushes w and returns how many bytes the file holds.
	written := func() (int64, error) {
		if err := w.Flush(); err != nil {
			return 0, err
		}
		return f.Seek(0, io.SeekCurrent)
	}
	part, err := mw.CreateFormFile("file", "bench.bin")
	if err != nil {
		return nil, err
	}
	off, err := written()
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(part, io.LimitReader(newRandom(), size)); err != nil {
		return nil, err
	}
	if err := mw.Close(); err != nil {
		return nil, err
	}
	total, err := written()
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", f.Name(), err)
	}
	return &uploadFile{path: f.Name(), contentType: mw.FormDataContentType(), dataOff: off, size: size, total: total}, nil
}

// open returns the file, for one upload of the whole body.
func (u *uploadFile) open() (*os.File, error) { return os.Open(u.path) }

// data returns the file part's bytes alone, for the bare SDK.
func (u *uploadFile) data(f *os.File) io.Reader { return io.NewSectionReader(f, u.dataOff, u.size) }
