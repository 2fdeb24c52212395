package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// maxReadmeLines keeps the README a page a newcomer reads to the end;
// everything else goes in docs/ (issue 10).
const maxReadmeLines = 200

func TestReadmeIsShort(t *testing.T) {
	readme := readRepoFile(t, "README.md")
	if n := strings.Count(strings.TrimRight(readme, "\n"), "\n") + 1; n > maxReadmeLines {
		t.Errorf("README.md has %d lines, more than %d: move the detail to a page under docs/ and link to it", n, maxReadmeLines)
	}
}

// TestDocLinks checks every link in README.md and docs/*.md: a relative
// link names a file or directory in the repository, its #fragment a
// heading of that file, and nothing but an http(s) URL leaves the
// repository.
func TestDocLinks(t *testing.T) {
	pages, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	pages = append([]string{filepath.Join(root, "README.md")}, pages...)
	absRoot, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, page := range pages {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(root, page)
		for _, l := range markdownLinks(string(text)) {
			checked++
			if err := checkLink(absRoot, page, l.target); err != "" {
				t.Errorf("%s:%d: link %q %s", name, l.line, l.target, err)
			}
		}
	}
	if checked == 0 {
		t.Fatal("found no links at all: the link parser is broken")
	}
}

// checkLink returns what is wrong with target, a link in the file page, or
// "" when it resolves.
func checkLink(absRoot, page, target string) string {
	if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") {
		return ""
	}
	if regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`).MatchString(target) || strings.HasPrefix(target, "//") {
		return "points outside the repository: only http(s) URLs may"
	}
	if strings.HasPrefix(target, "/") {
		return "is absolute: make it relative to the page"
	}
	path, fragment, _ := strings.Cut(target, "#")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	file := page
	if path != "" {
		file = filepath.Join(filepath.Dir(page), filepath.FromSlash(path))
		abs, err := filepath.Abs(file)
		if err != nil {
			return err.Error()
		}
		if rel, err := filepath.Rel(absRoot, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "points outside the repository"
		}
		if _, err := os.Stat(file); err != nil {
			return "names no file in the repository"
		}
	}
	if fragment == "" {
		return ""
	}
	if !strings.HasSuffix(file, ".md") {
		return "has a #fragment, but only Markdown files have headings to check"
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	if !headingAnchors(string(text))[fragment] {
		return "names no heading of " + filepath.Base(file) + " (anchors are GitHub's: lower case, spaces to -, punctuation dropped)"
	}
	return ""
}

type link struct {
	target string
	line   int
}

var (
	// inlineLink matches [text](target) and ![alt](target), with an
	// optional "title".
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	// refDef matches a reference definition: [name]: target
	refDef    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	codeSpan  = regexp.MustCompile("`+[^`]*`+")
	fenceLine = regexp.MustCompile("^\\s{0,3}(```|~~~)")
)

// markdownLinks returns the links of a Markdown text, outside code blocks
// and code spans.
func markdownLinks(text string) []link {
	var out []link
	inFence := false
	for i, line := range strings.Split(text, "\n") {
		if fenceLine.MatchString(line) {
			inFence = !inFence
			continue
		}
		if inFence {
			continue
		}
		if m := refDef.FindStringSubmatch(line); m != nil {
			out = append(out, link{m[1], i + 1})
			continue
		}
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			out = append(out, link{m[1], i + 1})
		}
	}
	return out
}

var atxHeading = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)

// headingAnchors returns the anchors GitHub gives a Markdown file's
// headings: lower case, punctuation dropped, spaces turned to hyphens, and
// -1, -2... after a repeated one.
func headingAnchors(text string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	inFence := false
	for _, line := range strings.Split(text, "\n") {
		if fenceLine.MatchString(line) {
			inFence = !inFence
			continue
		}
		m := atxHeading.FindStringSubmatch(line)
		if inFence || m == nil {
			continue
		}
		slug := slugify(m[1])
		if n := seen[slug]; n > 0 {
			anchors[slug+"-"+strconv.Itoa(n)] = true
		} else {
			anchors[slug] = true
		}
		seen[slug]++
	}
	return anchors
}

// slugify is GitHub's heading anchor: the heading's text (links reduced
// to their text) in lower case, keeping letters, digits, spaces, hyphens
// and underscores, each space a hyphen.
func slugify(heading string) string {
	heading = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(heading, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlugify(t *testing.T) {
	for heading, want := range map[string]string{
		"Adding a backend":                        "adding-a-backend",
		"Tigris and S3":                           "tigris-and-s3",
		"`DATABASE_URL`: Postgres":                "database_url-postgres",
		"Read your writes: the consistency token": "read-your-writes-the-consistency-token",
		"Errors (the one table)":                  "errors-the-one-table",
		"A [link](x.md) in a heading":             "a-link-in-a-heading",
	} {
		if got := slugify(heading); got != want {
			t.Errorf("slugify(%q) = %q, want %q", heading, got, want)
		}
	}
	anchors := headingAnchors("# Setup\n## Setup\n```\n# not a heading\n```\n")
	for _, want := range []string{"setup", "setup-1"} {
		if !anchors[want] {
			t.Errorf("headingAnchors has no %q: %v", want, anchors)
		}
	}
	if anchors["not-a-heading"] {
		t.Error("headingAnchors took a line in a code block for a heading")
	}
}
