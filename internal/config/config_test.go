package config_test

import (
	"strings"
	"testing"

	"github.com/example/flystorage/internal/config"
)

// TestTable checks the table itself: every row documented, every name
// once, and every default accepted by its own setter (Load with nothing set
// parses them all). How Load treats set variables is tested where the whole
// configuration is loaded, in internal/app.
func TestTable(t *testing.T) {
	if _, err := config.Load(func(string) string { return "" }); err != nil {
		t.Fatalf("the defaults do not load: %v", err)
	}
	bucket := map[string]string{"BUCKET_NAME": "b"}
	if _, err := config.Load(func(n string) string { return bucket[n] }); err != nil {
		t.Fatalf("the bucket's defaults do not load: %v", err)
	}
	seen := map[string]bool{}
	for _, v := range config.Vars() {
		if seen[v.Name] {
			t.Errorf("%s is in the table twice", v.Name)
		}
		seen[v.Name] = true
		if v.Doc == "" || v.Group == "" || !strings.HasSuffix(v.Doc, ".") {
			t.Errorf("%s: want a group and a one-sentence description ending in a period, got %+v", v.Name, v)
		}
		if v.Secret && v.Default != "" {
			t.Errorf("%s is a secret with a default", v.Name)
		}
	}
}
