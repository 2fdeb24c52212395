//go:build unix

package storage

import (
	"fmt"
	"syscall"
)

// StatVolume reads the size and free space of the file system holding path.
func StatVolume(path string) (Volume, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return Volume{}, fmt.Errorf("reading the free space of %s: %w", path, err)
	}
	bsize := uint64(st.Bsize)
	return Volume{Path: path, FreeBytes: uint64(st.Bavail) * bsize, TotalBytes: uint64(st.Blocks) * bsize}, nil
}
