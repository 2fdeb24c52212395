package deploy

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestArchitectureExcerptsMatchTheCode holds docs/architecture.md's worked
// example to the code: every Go excerpt in it must stand, line for line, in
// some Go file of the repo (the last line may be a declaration whose body
// the excerpt leaves out).
func TestArchitectureExcerptsMatchTheCode(t *testing.T) {
	doc := readRepoFile(t, "docs/architecture.md")
	blocks := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("docs/architecture.md has no Go excerpts: the worked example is gone")
	}
	var files [][]string
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() && (d.Name() == ".git" || d.Name() == ".cache") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") {
			b, err := os.ReadFile(path)
			if err == nil {
				files = append(files, normalize(string(b)))
			}
		}
		return nil
	})
	for _, b := range blocks {
		excerpt := normalize(b[1])
		found := false
		for _, f := range files {
			if contains(f, excerpt) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("docs/architecture.md quotes code that no Go file holds:\n%s", b[1])
		}
	}
}

// normalize trims every line and drops the empty ones.
func normalize(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// contains reports whether lines holds excerpt as a run, its last line
// being a prefix of the file's line.
func contains(lines, excerpt []string) bool {
	n := len(excerpt)
	for i := 0; i+n <= len(lines); i++ {
		ok := true
		for k := 0; k < n && ok; k++ {
			if k == n-1 {
				ok = strings.HasPrefix(lines[i+k], excerpt[k])
			} else {
				ok = lines[i+k] == excerpt[k]
			}
		}
		if ok {
			return true
		}
	}
	return false
}
