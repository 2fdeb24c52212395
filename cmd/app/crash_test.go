package main

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/flystorage/internal/testenv"
)

// The crash suite: the app killed with SIGKILL in the middle of 16-way
// writes, and its database or store stopped under it, never loses a write
// it acknowledged. Every loop is bounded in count and time.
const (
	crashWorkers = 16
	// crashOpsPerWorker bounds each worker's writes in one round.
	crashOpsPerWorker = 200
	// crashAckedBeforeKill is how many acknowledged writes a round waits
	// for (at most crashLoadTime) before it kills the app.
	crashAckedBeforeKill = 96
	crashLoadTime        = 5 * time.Second
	crashRounds          = 3
)

// crashProc is the app in a child process: this test binary re-executed as
// the app (see TestMain), so that it can be killed like a crashed machine.
type crashProc struct {
	cmd    *exec.Cmd
	logs   *logSink
	base   string
	exited chan error
}

// startCrashProc starts the app in a child process and waits (at most
// 30s) for it to listen.
func startCrashProc(t *testing.T, env map[string]string) *crashProc {
	t.Helper()
	p := startWaitingProc(t, env)
	p.listening(t, 30*time.Second)
	return p
}

// startWaitingProc starts the app in a child process without waiting for
// it to listen: a machine waiting for the lease does not.
func startWaitingProc(t *testing.T, env map[string]string) *crashProc {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = []string{"FLYSTORAGE_RUN_APP=1", "PORT=0"}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &crashProc{cmd: cmd, logs: newLogSink(), exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(p.kill)
	return p
}

// listening waits (at most d) for the app to listen.
func (p *crashProc) listening(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case addr := <-p.logs.listening:
		_, port, _ := net.SplitHostPort(addr)
		p.base = "http://127.0.0.1:" + port
	case err := <-p.exited:
		p.exited <- err
		t.Fatalf("the app exited before listening: %v; logs:\n%s", err, p.logs)
	case <-time.After(d):
		t.Fatalf("the app did not listen within %s; logs:\n%s", d, p.logs)
	}
}

// kill sends SIGKILL and waits (at most 10s) for the process to go.
func (p *crashProc) kill() {
	if p.cmd.ProcessState != nil {
		return
	}
	p.cmd.Process.Kill()
	select {
	case err := <-p.exited:
		p.exited <- err
	case <-time.After(10 * time.Second):
	}
}

// ackedWrite is a write the app answered 201: a note's title and body, or
// a file's content digest.
type ackedWrite struct {
	id, kind    string // kind: note or file
	title, body string
	sha         [32]byte
}

// crashLoad runs the 16 writers against base until stop is closed or each
// has made crashOpsPerWorker writes, keeping every acknowledged write.
type crashLoad struct {
	mu      sync.Mutex
	acked   []ackedWrite
	n       atomic.Int64
	failed  atomic.Int64 // writes refused or cut off
	stop    chan struct{}
	done    sync.WaitGroup
	stopped sync.Once
}

var crashClient = &http.Client{Timeout: 15 * time.Second}

func startCrashLoad(base string, round string) *crashLoad {
	l := &crashLoad{stop: make(chan struct{})}
	for w := range crashWorkers {
		l.done.Add(1)
		go func() {
			defer l.done.Done()
			rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
			for i := range crashOpsPerWorker {
				select {
				case <-l.stop:
					return
				default:
				}
				var a ackedWrite
				var ok bool
				if i%2 == 0 {
					a, ok = writeNote(base, fmt.Sprintf("%s w%d n%d", round, w, i), strings.Repeat(fmt.Sprint(rng.IntN(10)), rng.IntN(2000)))
				} else {
					data := make([]byte, 1024+rng.IntN(32<<10))
					for j := range data {
						data[j] = byte(rng.Uint32())
					}
					a, ok = writeFile(base, data)
				}
				if !ok {
					l.failed.Add(1)
					// A refused write: the app may be down; do not spin.
					select {
					case <-l.stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					continue
				}
				l.mu.Lock()
				l.acked = append(l.acked, a)
				l.mu.Unlock()
				l.n.Add(1)
			}
		}()
	}
	return l
}

// waitAcked waits until n writes were acknowledged or d passed.
func (l *crashLoad) waitAcked(n int64, d time.Duration) { waitCount(&l.n, n, d) }

// waitFailed waits until n writes failed or d passed.
func (l *crashLoad) waitFailed(n int64, d time.Duration) { waitCount(&l.failed, n, d) }

func waitCount(c *atomic.Int64, n int64, d time.Duration) {
	testenv.Eventually(d, func() bool { return c.Load() >= n })
}

func (l *crashLoad) finish() []ackedWrite {
	l.stopped.Do(func() { close(l.stop) })
	l.done.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.acked
}

func writeNote(base, title, body string) (ackedWrite, bool) {
	in, _ := json.Marshal(map[string]string{"title": title, "body": body})
	res, err := crashClient.Post(base+"/api/notes", "application/json", bytes.NewReader(in))
	if err != nil {
		return ackedWrite{}, false
	}
	defer res.Body.Close()
	var out struct{ ID string }
	if res.StatusCode != 201 || json.NewDecoder(res.Body).Decode(&out) != nil || out.ID == "" {
		return ackedWrite{}, false
	}
	return ackedWrite{id: out.ID, kind: "note", title: title, body: body}, true
}

func writeFile(base string, data []byte) (ackedWrite, bool) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	w, _ := mw.CreateFormFile("file", "crash.bin")
	w.Write(data)
	mw.Close()
	res, err := crashClient.Post(base+"/api/files", mw.FormDataContentType(), &buf)
	if err != nil {
		return ackedWrite{}, false
	}
	defer res.Body.Close()
	var out struct{ ID string }
	if res.StatusCode != 201 || json.NewDecoder(res.Body).Decode(&out) != nil || out.ID == "" {
		return ackedWrite{}, false
	}
	return ackedWrite{id: out.ID, kind: "file", sha: sha256.Sum256(data)}, true
}

// checkAcked reads every acknowledged write back and returns how many were
// lost or changed, reporting each.
func checkAcked(t *testing.T, base string, acked []ackedWrite) int {
	t.Helper()
	lost := 0
	for _, a := range acked {
		if problem := readBack(base, a); problem != "" {
			lost++
			if lost <= 10 {
				t.Errorf("acknowledged %s %s: %s", a.kind, a.id, problem)
			}
		}
	}
	return lost
}

func readBack(base string, a ackedWrite) string {
	path := "/api/notes/" + a.id
	if a.kind == "file" {
		path = "/api/files/" + a.id + "/content"
	}
	res, err := crashClient.Get(base + path)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err.Error()
	}
	if res.StatusCode != 200 {
		return fmt.Sprintf("%d %s", res.StatusCode, body)
	}
	if a.kind == "file" {
		if sha256.Sum256(body) != a.sha {
			return "content differs"
		}
		return ""
	}
	var n struct{ Title, Body string }
	if json.Unmarshal(body, &n) != nil || n.Title != a.title || n.Body != a.body {
		return "title or body differs"
	}
	return ""
}

// integrityCheck runs PRAGMA integrity_check on the SQLite file of an app
// that is not running.
func integrityCheck(t *testing.T, dbPath string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var result string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&result); err != nil || result != "ok" {
		t.Errorf("PRAGMA integrity_check after a crash: %q %v", result, err)
	}
}

// TestCrash kills the app with SIGKILL in the middle of 16-way note and
// file writes, three rounds on each pair of stores, restarts it on the same
// data and reads back every write it acknowledged.
func TestCrash(t *testing.T) {
	combos := []struct {
		name string
		env  func(t *testing.T, dir string) map[string]string
	}{
		{"sqlite+local", func(t *testing.T, dir string) map[string]string {
			return map[string]string{"DATABASE_PATH": filepath.Join(dir, "app.db"), "BLOB_DIR": filepath.Join(dir, "blobs")}
		}},
		{"postgres+local", func(t *testing.T, dir string) map[string]string {
			return map[string]string{"DATABASE_URL": testenv.PostgresURL(t), "MIGRATE_ON_START": "true", "BLOB_DIR": filepath.Join(dir, "blobs")}
		}},
		{"sqlite+s3", func(t *testing.T, dir string) map[string]string {
			env := testenv.S3Bucket(t).Env()
			env["DATABASE_PATH"] = filepath.Join(dir, "app.db")
			return env
		}},
		{"postgres+s3", func(t *testing.T, dir string) map[string]string {
			env := testenv.S3Bucket(t).Env()
			env["DATABASE_URL"], env["MIGRATE_ON_START"] = testenv.PostgresURL(t), "true"
			return env
		}},
	}
	for _, c := range combos {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			env := c.env(t, dir)
			var acked []ackedWrite
			failed := int64(0)
			for round := range crashRounds {
				p := startCrashProc(t, env)
				if lost := checkAcked(t, p.base, acked); lost > 0 {
					t.Fatalf("round %d: %d of %d acknowledged writes lost after the crash", round, lost, len(acked))
				}
				load := startCrashLoad(p.base, fmt.Sprintf("%s r%d", c.name, round))
				load.waitAcked(int64(len(acked))/int64(round+1)/4+crashAckedBeforeKill, crashLoadTime)
				p.kill()
				acked = append(acked, load.finish()...)
				failed += load.failed.Load()
				if path := env["DATABASE_PATH"]; path != "" {
					integrityCheck(t, path)
				}
			}
			p := startCrashProc(t, env)
			lost := checkAcked(t, p.base, acked)
			t.Logf("crash %s: %d rounds of kill -9 under %d writers: %d writes acknowledged, %d lost, %d refused or cut off",
				c.name, crashRounds, crashWorkers, len(acked), lost, failed)
			fmt.Printf("crash suite %s: acknowledged=%d lost=%d refused_or_cut=%d\n", c.name, len(acked), lost, failed)
			if len(acked) < crashRounds*crashAckedBeforeKill/2 {
				t.Errorf("only %d writes acknowledged in %d rounds: the load did not run", len(acked), crashRounds)
			}
			if lost > 0 {
				t.Errorf("%d of %d acknowledged writes lost", lost, len(acked))
			}
		})
	}
}

// TestCrashStoreOutages stops the database (a throwaway Postgres) or the
// store (a throwaway MinIO) in the middle of writes and while idle, starts
// it again, and checks the app recovers without losing a write it
// acknowledged.
func TestCrashStoreOutages(t *testing.T) {
	for _, c := range []struct {
		name string
		// setup returns the app's environment and the outage's stop and
		// start.
		setup func(t *testing.T) (env map[string]string, stop, start func())
	}{
		{"postgres", func(t *testing.T) (map[string]string, func(), func()) {
			cluster := testenv.NewCluster(t, testenv.ClusterOptions{})
			env := map[string]string{"DATABASE_URL": cluster.URL("disable"), "MIGRATE_ON_START": "true",
				"DB_CONNECT_TIMEOUT": "2s", "BLOB_DIR": filepath.Join(t.TempDir(), "blobs")}
			return env, func() { cluster.Stop(t) }, func() { cluster.Start(t) }
		}},
		{"minio", func(t *testing.T) (map[string]string, func(), func()) {
			m := testenv.NewMinIO(t)
			env := m.Env()
			env["DATABASE_PATH"] = filepath.Join(t.TempDir(), "app.db")
			return env, m.Stop, func() { m.Start(t) }
		}},
	} {
		for _, underLoad := range []bool{true, false} {
			name := c.name + " idle"
			if underLoad {
				name = c.name + " under load"
			}
			t.Run(name, func(t *testing.T) {
				env, stop, start := c.setup(t)
				p := startCrashProc(t, env)
				var acked []ackedWrite
				var failed int64
				load := startCrashLoad(p.base, name+" before")
				load.waitAcked(crashAckedBeforeKill, crashLoadTime)
				if !underLoad {
					acked = append(acked, load.finish()...)
				}
				stop()
				if !underLoad {
					// One write of each kind while it is down: answered in
					// bounded time (crashClient's timeout); one that is
					// acknowledged must survive like any other.
					for _, w := range []func() (ackedWrite, bool){
						func() (ackedWrite, bool) { return writeNote(p.base, name+" during", "x") },
						func() (ackedWrite, bool) { return writeFile(p.base, []byte("during the outage")) },
					} {
						if a, ok := w(); ok {
							acked = append(acked, a)
						} else {
							failed++
						}
					}
				}
				if underLoad {
					// Let every writer meet the outage, then stop them.
					load.waitFailed(crashWorkers, 10*time.Second)
					acked = append(acked, load.finish()...)
					failed += load.failed.Load()
				}
				start()
				// The app must take writes again within 15s.
				if !testenv.Eventually(15*time.Second, func() bool {
					a, ok := writeNote(p.base, name+" after", "back")
					if ok {
						acked = append(acked, a)
					}
					return ok
				}) {
					t.Fatalf("the app did not take writes within 15s of %s coming back; logs:\n%s", c.name, p.logs)
				}
				after := startCrashLoad(p.base, name+" after")
				after.waitAcked(crashAckedBeforeKill/2, crashLoadTime)
				acked = append(acked, after.finish()...)
				lost := checkAcked(t, p.base, acked)
				t.Logf("outage %s: %d writes acknowledged, %d lost, %d refused during the outage", name, len(acked), lost, failed)
				fmt.Printf("crash suite outage %s: acknowledged=%d lost=%d refused=%d\n", name, len(acked), lost, failed)
				if lost > 0 {
					t.Errorf("%d of %d acknowledged writes lost across the outage", lost, len(acked))
				}
			})
		}
	}
}
