package storage

// Volume is the file system a store keeps its data on.
type Volume struct {
	Path       string // a directory on it
	FreeBytes  uint64 // available to the app (not the root reserve)
	TotalBytes uint64
}

// VolumeReporter is implemented by stores that keep their data in a local
// directory (SQLite, the local file store), so that /readyz and /metrics
// can show how full the volume is before writes fail with ErrNoSpace.
type VolumeReporter interface {
	Volume() (Volume, error)
}
