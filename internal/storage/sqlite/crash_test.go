package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/example/flystorage/internal/storage"
	"github.com/example/flystorage/internal/storage/sqlite"
)

// TestMain lets the test binary be the writer TestKillDuringWrites kills.
func TestMain(m *testing.M) {
	if path := os.Getenv("SQLITE_CRASH_WRITER"); path != "" {
		crashWriter(path)
		return
	}
	os.Exit(m.Run())
}

// crashWriter creates notes from 16 goroutines, so that writes commit in
// groups, and prints each id once CreateNote has returned for it, until it
// is killed.
func crashWriter(path string) {
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				now := storage.Now()
				n := storage.Note{ID: storage.NewID(), Title: "acknowledged", CreatedAt: now, UpdatedAt: now}
				if err := s.CreateNote(context.Background(), n); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(out, n.ID)
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestKillDuringWrites kills -9 a process in the middle of grouped writes:
// every note whose CreateNote had returned is in the database afterwards.
func TestKillDuringWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SQLITE_CRASH_WRITER="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	const want = 2000
	acked := make(chan []string, 1)
	go func() {
		var ids []string
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ids = append(ids, sc.Text())
			if len(ids) == want {
				cmd.Process.Kill() // SIGKILL: no deferred code, no Close
			}
		}
		acked <- ids
	}()
	var ids []string
	select {
	case ids = <-acked:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatal("the writer acknowledged fewer than 2000 notes in a minute")
	}
	cmd.Wait()
	if len(ids) < want {
		t.Fatalf("the writer stopped after %d notes", len(ids))
	}

	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range ids {
		if _, err := s.GetNote(context.Background(), id); err != nil {
			t.Fatalf("note %s was acknowledged before the kill but is gone: %v", id, err)
		}
	}
}
