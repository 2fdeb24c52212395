//go:build !unix

package storage

import "errors"

// StatVolume reads the size and free space of the file system holding path;
// here it is not supported.
func StatVolume(path string) (Volume, error) {
	return Volume{}, errors.New("reading free space is not supported on this system")
}
