package storage_test

import (
	"errors"
	"testing"

	"github.com/example/flystorage/internal/storage"
)

func TestPosition(t *testing.T) {
	for _, tc := range []struct {
		s string
		p storage.Position
	}{{"0/0", 0}, {"0/2A", 42}, {"16/B374D848", 0x16_B374D848}, {"FFFFFFFF/FFFFFFFF", 1<<64 - 1}} {
		if got := tc.p.String(); got != tc.s {
			t.Errorf("Position(%d).String() = %q, want %q", uint64(tc.p), got, tc.s)
		}
		if got, err := storage.ParsePosition(tc.s); err != nil || got != tc.p {
			t.Errorf("ParsePosition(%q) = %d, %v; want %d", tc.s, got, err, uint64(tc.p))
		}
	}
	if p, err := storage.ParsePosition("16/b374d848"); err != nil || p != 0x16_B374D848 {
		t.Errorf("lower case: %v, %v", p, err)
	}
	for _, bad := range []string{"", "16", "/1", "1/", "1/2/3", "G/1", "100000000/0", "1/ 2", "-1/2"} {
		if _, err := storage.ParsePosition(bad); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("ParsePosition(%q): %v, want ErrInvalid", bad, err)
		}
	}
}
