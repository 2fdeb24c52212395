package server

import (
	"encoding/json"
	"errors"
	"github.com/example/flystorage/internal/service"
	"github.com/example/flystorage/internal/testenv"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/example/flystorage/internal/storage"
)

// FuzzParseRange: any satisfiable answer lies inside the file and is not
// empty; a start past the end is an error; no header or several ranges
// mean the whole file.
func FuzzParseRange(f *testing.F) {
	for _, seed := range []struct {
		h    string
		size int64
	}{
		{"", 10}, {"bytes=0-0", 10}, {"bytes=5-", 10}, {"bytes=-3", 10}, {"bytes=-30", 10},
		{"bytes=10-", 10}, {"bytes=3-1", 10}, {"bytes=0-99999999999999999999", 10},
		{"bytes=1-2,4-5", 10}, {"bytes= 2-4 ", 10}, {"items=0-1", 10}, {"bytes=-0", 0}, {"bytes=0-", 0},
		// An end past the file is clamped to its last byte, size-1.
		{"bytes=0-10", 10}, {"bytes=2-50", 10},
	} {
		f.Add(seed.h, seed.size)
	}
	f.Fuzz(func(t *testing.T, header string, size int64) {
		if size < 0 {
			size = -(size + 1)
		}
		rng, err := parseRange(header, size)
		switch {
		case err != nil && rng != nil:
			t.Fatalf("parseRange(%q, %d) returned both %+v and %v", header, size, rng, err)
		case err != nil:
			if !strings.HasPrefix(header, "bytes=") || strings.Contains(header, ",") {
				t.Fatalf("parseRange(%q, %d) failed on a header it should ignore: %v", header, size, err)
			}
		case rng != nil:
			if rng.Start < 0 || rng.Length < 1 || rng.Start >= size || rng.Length > size-rng.Start {
				t.Fatalf("parseRange(%q, %d) = [%d, +%d), outside the file", header, size, rng.Start, rng.Length)
			}
		default:
			if strings.HasPrefix(header, "bytes=") && !strings.Contains(header, ",") {
				t.Fatalf("parseRange(%q, %d) ignored a single range: want a range or an error", header, size)
			}
		}
	})
}

// FuzzDecodeNote: POST /api/notes either refuses a body with a 4xx naming
// the problem, or stores a note that passes Validate; never a 5xx.
func FuzzDecodeNote(f *testing.F) {
	for _, s := range []string{`{"title":"a","body":"b"}`, `{"title":""}`, `{}`, `{"title":"a"} {}`, `{"title":"a","extra":1}`,
		`{"title":"\u0000"}`, `{"title":"\ud800"}`, `[]`, ``, `{"title":` + `"` + strings.Repeat("é", 201) + `"}`, `{"title":null}`} {
		f.Add(s)
	}
	db, blobs := testenv.LocalStores(f)
	h := New(Options{Service: service.New(service.Options{DB: db, Blobs: blobs, KeyPrefix: "files/", MaxUpload: 1 << 20}), MaxUploadBytes: 1 << 20})
	f.Fuzz(func(t *testing.T, body string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/api/notes", strings.NewReader(body)))
		var out struct {
			ID, Title, Body string
			Error           struct{ Message string }
		}
		json.Unmarshal(rec.Body.Bytes(), &out)
		switch {
		case rec.Code == http.StatusCreated:
			n := storage.Note{Title: out.Title, Body: out.Body}
			if err := n.Validate(); err != nil || !json.Valid([]byte(body)) {
				t.Fatalf("body %q stored a note %+v: %v", body, out, err)
			}
		case rec.Code < 400 || rec.Code > 499 || out.Error.Message == "":
			t.Fatalf("body %q answered %d %s, want 201 or a 4xx with a message", body, rec.Code, rec.Body)
		}
	})
}

// FuzzCursor: a cursor is accepted exactly when it is an ID of the shape
// NewID makes (ValidID), which is then its own canonical form.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"", storage.NewID(), strings.ToUpper(storage.NewID()), "{" + storage.NewID() + "}",
		"urn:uuid:" + storage.NewID(), "00000000-0000-0000-0000-000000000000", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "'; DROP TABLE notes;--"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cursor string) {
		r := httptest.NewRequest("GET", "/api/notes?"+url.Values{"cursor": {cursor}}.Encode(), nil)
		p, err := page(r)
		valid := storage.ValidID(cursor)
		switch {
		case cursor == "" && err != nil:
			t.Fatalf("no cursor: %v", err)
		case cursor != "" && valid != (err == nil):
			t.Fatalf("cursor %q: ValidID %v but page error %v", cursor, valid, err)
		case err == nil && p.Cursor != cursor:
			t.Fatalf("cursor %q became %q", cursor, p.Cursor)
		}
		if valid {
			if len(cursor) != 36 || strings.ToLower(cursor) != cursor || !utf8.ValidString(cursor) {
				t.Fatalf("ValidID accepted %q, not a canonical UUID", cursor)
			}
			if strings.ContainsAny(cursor, "'\";\\ ") {
				t.Fatalf("ValidID accepted %q", cursor)
			}
		}
	})
}

// FuzzCheckSignature: a URL signURL made is accepted until it expires, for
// its method (and HEAD for GET); any change to its method, path, expiry or
// signature is refused; nothing panics.
func FuzzCheckSignature(f *testing.F) {
	f.Add("GET", "/signed/files/"+storage.NewID(), int64(3600), uint(0), byte('x'), "")
	f.Add("PUT", "/signed/uploads/"+storage.NewID(), int64(60), uint(40), byte('0'), "&expires=99999999999")
	f.Add("GET", "/signed/files/a", int64(-5), uint(3), byte('/'), "")
	f.Fuzz(func(t *testing.T, method, path string, ttl int64, at uint, b byte, extra string) {
		if method != "GET" && method != "PUT" {
			return
		}
		if !strings.HasPrefix(path, "/") || ttl < -1e9 || ttl > 1e9 {
			return
		}
		s := &Server{signingKey: []byte("fuzz-key-0123456789abcdef"), now: time.Now}
		base := httptest.NewRequest("GET", "http://app.test/", nil)
		expires := time.Now().Add(time.Duration(ttl) * time.Second)
		signed := s.signURL(base, method, path, expires)
		orig, err := url.Parse(signed)
		if err != nil || orig.Path != path || orig.RawPath != "" {
			// The app signs /signed/files/<id> and /signed/uploads/<id>,
			// which need no escaping; other paths say nothing about it.
			return
		}
		check := func(method, raw string) (error, *url.URL) {
			u, err := url.Parse(raw)
			if err != nil {
				return errors.New("unparsable"), nil
			}
			return s.checkSignature(&http.Request{Method: method, URL: u}), u
		}
		want := func(u *url.URL) bool { return time.Now().Unix() <= expires.Unix() && u != nil }
		if err, u := check(method, signed); (err == nil) != want(u) {
			t.Fatalf("untampered %s %s (ttl %d): %v", method, signed, ttl, err)
		}
		if method == "GET" {
			if err, u := check("HEAD", signed); (err == nil) != want(u) {
				t.Fatalf("HEAD of signed GET %s: %v", signed, err)
			}
		} else if err, _ := check("GET", signed); err == nil {
			t.Fatalf("a signed PUT %s was accepted as a GET", signed)
		}

		// Change one byte, or append something.
		tampered := signed + extra
		if extra == "" && len(signed) > 0 {
			i := int(at % uint(len(signed)))
			tampered = signed[:i] + string([]byte{b}) + signed[i+1:]
		}
		err, u := check(method, tampered)
		if err != nil || u == nil {
			return
		}
		oq, q := orig.Query(), u.Query()
		if u.Path != orig.Path || q.Get("expires") != oq.Get("expires") || q.Get("signature") != oq.Get("signature") {
			t.Fatalf("tampered URL accepted:\n signed   %s\n tampered %s", signed, tampered)
		}
	})
}
