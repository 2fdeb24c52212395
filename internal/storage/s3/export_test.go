package s3

import "io"

// PartsMapped is how many part buffers uploads hold right now.
func PartsMapped() int64 { return partsMapped.Load() }

// NewPartBody exposes a part's body and its close to the tests.
func NewPartBody(data []byte) (io.ReadSeeker, func()) {
	p := newPartBody(data)
	return p, p.close
}
