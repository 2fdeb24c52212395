// Package web is the app's one page, embedded in the binary: an
// html/template and a little hand-written CSS and JavaScript, with no build
// step and nothing fetched from elsewhere.
package web

import (
	"embed"
	"html/template"
	"io/fs"
)

//go:embed index.html
var pages embed.FS

//go:embed static
var static embed.FS

// Page is the page's template.
var Page = template.Must(template.ParseFS(pages, "index.html"))

// Static holds app.js and style.css, served under /static/.
var Static, _ = fs.Sub(static, "static")

// PageData is what the template shows before any script runs.
type PageData struct {
	Database       string // backend names, as /api/storage gives them
	Files          string
	MaxUploadBytes int64
	// TokenRequired says writes need API_TOKEN, so the page asks for it
	// before the first one.
	TokenRequired bool
}
