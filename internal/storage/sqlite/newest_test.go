package sqlite

import (
	"context"
	"testing"

	"github.com/example/flystorage/internal/storage"
)

// TestNewestPageFollowsWrites lists the first page between writes of every
// kind: each listing shows the write before it, though the page is cached.
func TestNewestPageFollowsWrites(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	first := func() []storage.Note {
		t.Helper()
		notes, _, err := s.ListNotes(ctx, storage.Page{Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		return notes
	}
	if got := first(); len(got) != 0 {
		t.Fatalf("empty database lists %d notes", len(got))
	}
	a, b := note("a"), note("b")
	for _, n := range []storage.Note{a, b} {
		if err := s.CreateNote(ctx, n); err != nil {
			t.Fatal(err)
		}
		if got := first(); len(got) == 0 || got[0].ID != n.ID {
			t.Fatalf("after creating %q the first page starts with %+v", n.Title, got)
		}
	}
	first() // cached now
	b.Title = "b2"
	if _, err := s.UpdateNote(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got := first(); got[0].Title != "b2" {
		t.Errorf("after an update the first page shows %q", got[0].Title)
	}
	got := first()
	got[0].Title = "changed by a caller"
	if again := first(); again[0].Title != "b2" {
		t.Errorf("a caller's change to a listed note reached the cache: %q", again[0].Title)
	}
	if err := s.DeleteNote(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if got := first(); len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("after a delete the first page is %+v", got)
	}
	if got, _, _ := s.ListNotes(ctx, storage.Page{Limit: 1}); len(got) != 1 || got[0].ID != a.ID {
		t.Errorf("another page size: %+v", got)
	}
}

// TestNewestStaleReadNotServed: a page read while a write committed is
// stored under the generation before the write, and never served after it.
func TestNewestStaleReadNotServed(t *testing.T) {
	var c newest
	_, _, ok, gen := c.get(20)
	if ok {
		t.Fatal("an empty cache hit")
	}
	c.changed() // a write commits while the page is read
	c.put(20, gen, []storage.Note{note("stale")}, "")
	if _, _, ok, _ := c.get(20); ok {
		t.Error("a page read before a write was served after it")
	}
	_, _, _, gen = c.get(20)
	c.put(20, gen, []storage.Note{note("fresh")}, "")
	if page, _, ok, _ := c.get(20); !ok || page[0].Title != "fresh" {
		t.Errorf("a current page was not served: %v %+v", ok, page)
	}
	if _, _, ok, _ := c.get(10); ok {
		t.Error("a page of another size was served")
	}
}
