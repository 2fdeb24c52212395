package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// encodingJSON is what writeJSON wrote for a note before it had its own
// encoder: json.Encoder's bytes. The page is the map listNotes answered.
func encodingJSON(t testing.TB, v any) []byte {
	if p, ok := v.(notePage); ok {
		v = map[string]any{"notes": p.Notes, "next_cursor": p.NextCursor}
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func written(v any) []byte {
	rec := httptest.NewRecorder()
	writeJSON(rec, http.StatusOK, v)
	return rec.Body.Bytes()
}

func TestNoteJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 12, 3, 7, 1, 2, 345678000, time.UTC)
	cursor := "01a23aac-9225-7cb4-b318-9651010a3881"
	notes := []noteJSON{
		{ID: "01a23aac-9225-7cb4-b318-9651010a3881", Title: "plain", Body: "", CreatedAt: at, UpdatedAt: at},
		{ID: "x", Title: `<script>&"quotes"\</script>`, Body: "\x00\x01\b\f\n\r\t\x1f\x7f end", CreatedAt: at.Truncate(time.Second), UpdatedAt: at.Add(time.Hour)},
		{ID: "y", Title: "caf\u00e9 \u2028\u2029 \U0001F600", Body: "bad \xff\xfe utf-8 \xe2\x80", CreatedAt: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), UpdatedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)},
	}
	values := []any{
		notePage{Notes: []noteJSON{}},
		notePage{Notes: notes, NextCursor: &cursor},
		notePage{Notes: notes[:1]},
	}
	for _, n := range notes {
		values = append(values, n)
	}
	for _, v := range values {
		if got, want := written(v), encodingJSON(t, v); !bytes.Equal(got, want) {
			t.Errorf("writeJSON(%#v)\n got %s\nwant %s", v, got, want)
		}
	}
}

// FuzzNoteJSON holds the note encoder to encoding/json's bytes for any
// title, body and time.
func FuzzNoteJSON(f *testing.F) {
	f.Add("title", "body", int64(0), int64(1))
	f.Add("<&>\u2028", "\xff\x00\"\\", int64(1767225600), int64(999999999))
	f.Fuzz(func(t *testing.T, title, body string, sec, nsec int64) {
		// Years 0 to 9999, which MarshalJSON accepts.
		at := time.Unix(sec%253402300799, nsec%1e9).UTC()
		if at.Year() < 0 {
			at = at.AddDate(1970, 0, 0)
		}
		n := noteJSON{ID: title + body, Title: title, Body: body, CreatedAt: at, UpdatedAt: at}
		if got, want := written(n), encodingJSON(t, n); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
		c := body
		if got, want := written(notePage{Notes: []noteJSON{n, n}, NextCursor: &c}), encodingJSON(t, notePage{Notes: []noteJSON{n, n}, NextCursor: &c}); !bytes.Equal(got, want) {
			t.Fatalf("page: got %s\nwant %s", got, want)
		}
	})
}
