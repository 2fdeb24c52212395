package server

import (
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"
)

// cleanName keeps a file name fit to show and to put in a header: valid
// UTF-8, no control characters (Cc) and no format characters (Cf: bidi
// overrides such as U+202E, which make "évil\u202etxt.exe" show as
// "évilexe.txt", and zero-width marks), at most 255 bytes, never empty.
func cleanName(name string) string {
	name = strings.ToValidUTF8(name, "_")
	name = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Cc, r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" {
		return "upload"
	}
	return name
}

// contentType keeps a well-formed media type and falls back to
// application/octet-stream.
func contentType(v string) string {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || !strings.Contains(mt, "/") {
		return "application/octet-stream"
	}
	return mime.FormatMediaType(mt, params)
}
