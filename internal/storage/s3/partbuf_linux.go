// This file holds the parts of the uploader that replaces the SDK's
// transfer manager; upload.go's top comment says why, with its figures.

package s3

import "syscall"

// mapPart maps a part's buffer from the kernel, outside the Go heap, so
// that the parts of an upload neither count toward the collector's heap
// goal nor wait for a collection to be freed: unmapPart returns them at
// once.
func mapPart(size int) ([]byte, error) {
	return syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
}

// unmapPart returns a part from mapPart to the kernel; nothing may read or
// write it afterwards.
func unmapPart(buf []byte) { syscall.Munmap(buf) }
