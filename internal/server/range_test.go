package server

import "testing"

// TestParseRangeEndPastTheFile: a range whose end lies past the file ends
// at its last byte (size-1), so the answer's Content-Length and
// Content-Range claim exactly the bytes sent.
func TestParseRangeEndPastTheFile(t *testing.T) {
	for _, tc := range []struct {
		header        string
		start, length int64
	}{
		{"bytes=0-10", 0, 10},
		{"bytes=2-50", 2, 8},
		{"bytes=9-9", 9, 1},
		{"bytes=0-9", 0, 10},
	} {
		rng, err := parseRange(tc.header, 10)
		if err != nil || rng == nil || rng.Start != tc.start || rng.Length != tc.length {
			t.Errorf("parseRange(%q, 10) = %+v, %v; want [%d, +%d)", tc.header, rng, err, tc.start, tc.length)
		}
	}
}
