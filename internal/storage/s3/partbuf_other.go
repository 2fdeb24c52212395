//go:build !linux

// This file holds the parts of the uploader that replaces the SDK's
// transfer manager; upload.go's top comment says why, with its figures.

package s3

// mapPart allocates a part's buffer on the heap; on Linux, where the app
// runs on Fly, it is mapped outside it (partbuf_linux.go).
func mapPart(size int) ([]byte, error) { return make([]byte, size), nil }

func unmapPart([]byte) {}
