package server

import (
	"encoding/json"
	"testing"
)

// TestTextField: text fields are refused by name when they are not valid
// UTF-8, raw or through a lone surrogate escape, and read as
// encoding/json reads them otherwise.
func TestTextField(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"plain"`, "plain", true},
		{`"a\ud83d\ude00b"`, "a\U0001F600b", true},
		{`"\\ud800"`, `\ud800`, true}, // an escaped backslash, then letters
		{`"\u00e9\n"`, "é\n", true},
		{`null`, "", true},
		{`"a\ud800"`, "", false},
		{`"\udc00a"`, "", false},
		{`"\ud800\u0041"`, "", false},
		{`"\ud83d\ud83d\ude00"`, "", false},
		{"\"a\xffb\"", "", false},
		{`5`, "", false},
	} {
		got, err := textField(json.RawMessage(tc.raw), "title")
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("textField(%s) = %q, %v; want %q, ok %v", tc.raw, got, err, tc.want, tc.ok)
		}
	}
}
