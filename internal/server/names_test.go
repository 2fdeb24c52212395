package server

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// TestCleanNameDropsFormatCharacters: a right-to-left override (U+202E) in
// "évil\u202etxt.exe" shows as "évilexe.txt"; names keep no Unicode format
// (Cf) or control (Cc) characters.
func TestCleanNameDropsFormatCharacters(t *testing.T) {
	for in, want := range map[string]string{
		"évil\u202etxt.exe":         "éviltxt.exe",
		"a\u200bb\u2066c\u2069.txt": "abc.txt",
		"\ufeffreport.pdf":          "report.pdf",
		"tab\there\x00.txt":         "tabhere.txt",
		"\u202e\u200f":              "upload",
		"plain name.txt":            "plain name.txt",
	} {
		if got := cleanName(in); got != want {
			t.Errorf("cleanName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzCleanName checks cleanName's promises on any input: valid UTF-8, no
// control or format characters, at most 255 bytes, never empty.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"", "a.txt", "évil\u202etxt.exe", "\xff\xfe", strings.Repeat("é", 200), " \t ", "\u200b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := cleanName(in)
		if got == "" || len(got) > 255 || !utf8.ValidString(got) {
			t.Fatalf("cleanName(%q) = %q: want 1 to 255 bytes of valid UTF-8", in, got)
		}
		for _, r := range got {
			if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("cleanName(%q) = %q keeps %U", in, got, r)
			}
		}
	})
}
