package server

import (
	"bytes"
	"net/http"

	"github.com/example/flystorage/web"
)

// page serves the app's one page, which shows the backends and drives the
// same JSON API as any other client.
func (s *Server) page(w http.ResponseWriter, r *http.Request) error {
	var buf bytes.Buffer
	if err := web.Page.Execute(&buf, web.PageData{
		Database:       s.db.Backend(),
		Files:          s.blobs.Backend(),
		MaxUploadBytes: s.maxUpload,
		TokenRequired:  s.apiToken != "" || s.onFly,
	}); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Scripts and styles come from the app alone. Uploads and downloads may
	// go to the bucket, whose address the page learns at run time, so
	// connections may go to any http(s) origin.
	h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' http: https:; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.Write(buf.Bytes())
	return nil
}

// staticFiles serves app.js and style.css from the binary.
var staticFiles = http.StripPrefix("/static/", http.FileServerFS(web.Static))
