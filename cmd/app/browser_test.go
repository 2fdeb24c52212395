package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/example/flystorage/internal/testenv"
)

// page is a headless Chromium on the app's page that records every console
// error, uncaught exception and failed request.
type page struct {
	ctx       context.Context
	downloads string

	mu        sync.Mutex
	problems  []string
	completed chan string // guids of finished downloads
}

// openPage starts Chromium with the flags a closed network needs and opens
// url.
func openPage(t *testing.T, url string) *page {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(testenv.Chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })

	p := &page{ctx: ctx, downloads: t.TempDir(), completed: make(chan string, 4)}
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, a.Description+string(a.Value))
				}
				p.problem("console error: " + strings.Join(args, " "))
			}
		case *runtime.EventExceptionThrown:
			p.problem("uncaught exception: " + ev.ExceptionDetails.Text)
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				p.problem(fmt.Sprintf("request failed: %d %s", ev.Response.Status, ev.Response.URL))
			}
		case *network.EventLoadingFailed:
			if !ev.Canceled {
				p.problem("request failed: " + ev.ErrorText)
			}
		}
	})
	if err == nil {
		err = chromedp.ListenBrowser(ctx, func(ev any) {
			if ev, ok := ev.(*browser.EventDownloadProgress); ok && ev.State == browser.DownloadProgressStateCompleted {
				p.completed <- ev.GUID
			}
		})
	}
	if err == nil {
		_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	}
	if err == nil {
		events := true
		_, err = chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: p.downloads, EventsEnabled: &events,
		})
	}
	if err == nil {
		err = chromedp.Do(ctx,
			chromedp.EmulateViewport(1024, 800),
			chromedp.Navigate(url),
			chromedp.WaitVisible(chromedp.CSS("#note-form")),
		)
	}
	if err != nil {
		t.Fatalf("opening %s in Chromium: %v", url, err)
	}
	return p
}

func (p *page) problem(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.problems = append(p.problems, s)
}

func (p *page) run(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(p.ctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func (p *page) text(t *testing.T, sel string) string {
	t.Helper()
	s, err := chromedp.Run(p.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	return s
}

// noProblems fails the test on anything the page got wrong.
func (p *page) noProblems(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.problems {
		t.Errorf("in the browser: %s", s)
	}
}

// exercisePage does what a person would: add a note, upload a file and
// watch its progress, download it, and delete both.
func exercisePage(t *testing.T, a *testApp, database, files string, size int) {
	p := openPage(t, a.url+"/")
	p.run(t, "waiting for the backends",
		chromedp.WaitVisible(`//span[@id="readiness"][text()="Both answer."]`))
	if got := p.text(t, "#database-backend") + "/" + p.text(t, "#files-backend"); got != database+"/"+files {
		t.Errorf("the page shows backends %s, want %s/%s", got, database, files)
	}
	// Without FLY_REGION and PRIMARY_REGION the region panel says regions
	// change nothing.
	p.until(t, "the region panel is drawn", textOf("region-state")+`.startsWith("Regions are not set")`)

	// A note, typed and sent with the keyboard.
	p.run(t, "adding a note",
		chromedp.SendKeys(chromedp.CSS("#note-body"), "typed in Chromium"),
		chromedp.SendKeys(chromedp.CSS("#note-title"), "Browser note"+kb.Enter),
		chromedp.WaitVisible(`//ul[@id="notes"]/li//strong[text()="Browser note"]`),
	)

	// A file of several MiB, with its progress.
	data := make([]byte, size)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "upload.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p.run(t, "uploading",
		chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{path}),
		chromedp.Click(chromedp.CSS("#file-upload")),
		chromedp.WaitVisible(`//ul[@id="files"]/li//strong[text()="upload.bin"]`),
	)
	progress, err := chromedp.Run(p.ctx, chromedp.JavascriptAttribute[float64](chromedp.CSS("#upload-progress"), "value"))
	if err != nil {
		t.Fatal(err)
	}
	if status := p.text(t, "#upload-status"); progress != 100 || !strings.HasPrefix(status, "100%") {
		t.Errorf("after the upload the progress bar is at %v and says %q, want 100%%", progress, status)
	}
	// The bar followed the browser's own progress events up to the last byte
	// (a multipart body is a little larger than the file).
	sent, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.getElementById("upload-progress").dataset.sent || ""`))
	if n, _ := strconv.Atoi(sent); err != nil || n < size {
		t.Errorf("the browser's progress events reported %q bytes sent, want at least the file's %d", sent, size)
	}

	// The download button follows the file's link; the bytes must match.
	p.run(t, "downloading", chromedp.Click(chromedp.CSS(`button[aria-label="Download upload.bin"]`)))
	select {
	case guid := <-p.completed:
		got, err := os.ReadFile(filepath.Join(p.downloads, guid))
		want := sha256.Sum256(data)
		if gotSum := sha256.Sum256(got); err != nil || gotSum != want {
			t.Errorf("the download has %d bytes (sha256 %s), want the %d uploaded (%s)", len(got), hex.EncodeToString(gotSum[:8]), len(data), hex.EncodeToString(want[:8]))
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the download did not finish")
	}

	p.run(t, "deleting both",
		chromedp.Click(chromedp.CSS(`button[aria-label="Delete file upload.bin"]`)),
		chromedp.Click(chromedp.CSS("#confirm-delete")),
		chromedp.WaitNotPresent(`//ul[@id="files"]/li//strong[text()="upload.bin"]`),
		chromedp.Click(chromedp.CSS(`button[aria-label="Delete note Browser note"]`)),
		chromedp.Click(chromedp.CSS("#confirm-delete")),
		chromedp.WaitNotPresent(`//ul[@id="notes"]/li//strong[text()="Browser note"]`),
	)
	if files := a.get(t, "/api/files").json(t)["files"].([]any); len(files) != 0 {
		t.Errorf("after deleting in the page the API lists %d files", len(files))
	}

	// It fits a phone: nothing wider than the screen.
	p.run(t, "narrowing to a phone", chromedp.EmulateViewport(375, 667))
	width, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if width > 375 {
		t.Errorf("on a 375px screen the page is %dpx wide", width)
	}
	p.noProblems(t)
}

func TestPageSQLiteAndLocalFiles(t *testing.T) {
	a := localApp(t, map[string]string{"MAX_UPLOAD_BYTES": fmt.Sprint(64 << 20)})
	exercisePage(t, a, "sqlite", "local", 5<<20)
}

// TestPagePostgresAndMinIO uploads a file larger than one part, which the
// page sends straight to the bucket through a presigned URL.
func TestPagePostgresAndMinIO(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	env := bucket.Env()
	env["DATABASE_URL"] = testenv.PostgresURL(t)
	env["MIGRATE_ON_START"] = "true"
	env["MAX_UPLOAD_BYTES"] = fmt.Sprint(64 << 20)
	a := startApp(t, env)
	exercisePage(t, a, "postgres", "s3", 12<<20)
	a.stop() // every log line written
	if !strings.Contains(a.logs.String(), `route="POST /api/files/uploads/{id}/complete"`) {
		t.Error("the page did not use the direct upload flow for a file larger than a part")
	}
}

// TestPageAsksForToken: with API_TOKEN on, the page asks for it once, signs
// in with it, and writes with the session cookie: the token is kept nowhere
// a script could read it, and signing out revokes the session.
func TestPageAsksForToken(t *testing.T) {
	a := localApp(t, map[string]string{"API_TOKEN": apiToken})
	p := openPage(t, a.url+"/")
	p.run(t, "giving the token",
		chromedp.WaitVisible(chromedp.CSS("#token-form")),
		chromedp.SendKeys(chromedp.CSS("#token"), apiToken+kb.Enter),
		chromedp.WaitNotVisible(chromedp.CSS("#token-form")),
		chromedp.SendKeys(chromedp.CSS("#note-title"), "With a token"+kb.Enter),
		chromedp.WaitVisible(`//ul[@id="notes"]/li//strong[text()="With a token"]`),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#note-form")),
		chromedp.SendKeys(chromedp.CSS("#note-title"), "Still kept"+kb.Enter),
		chromedp.WaitVisible(`//ul[@id="notes"]/li//strong[text()="Still kept"]`),
	)
	asked, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`!document.getElementById("token-form").hidden`))
	if err != nil || asked {
		t.Error("after a reload the page asked for the token again")
	}
	kept, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](
		`JSON.stringify(sessionStorage) + JSON.stringify(localStorage) + document.cookie`))
	if err != nil || strings.Contains(kept, apiToken) || strings.Contains(kept, "flystorage_session") {
		t.Errorf("the page keeps the token or the session where scripts read it: %q, %v", kept, err)
	}
	p.run(t, "signing out",
		chromedp.Click(chromedp.CSS("#sign-out")),
		chromedp.WaitNotVisible(chromedp.CSS("#sign-out")),
	)
	signedIn, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](
		`fetch("/api/session").then(r => r.json()).then(s => s.signed_in)`, chromedp.EvalAwaitPromise))
	if err != nil || signedIn {
		t.Errorf("after signing out, the session is still live (%v)", err)
	}
	p.noProblems(t)
}

// TestPageShowsErrors: an error from the API reaches the page in words.
func TestPageShowsErrors(t *testing.T) {
	a := localApp(t, nil)
	p := openPage(t, a.url+"/")
	p.run(t, "adding a note with a title of 201 characters",
		chromedp.RemoveAttribute(chromedp.CSS("#note-title"), "maxlength"),
		chromedp.SetValue(chromedp.CSS("#note-title"), strings.Repeat("x", 201)),
		chromedp.Click(chromedp.CSS("#note-save")),
		chromedp.WaitVisible(chromedp.CSS("#error")),
	)
	msg := p.text(t, "#error")
	if !strings.Contains(msg, "title is 201 characters") {
		t.Errorf("the page shows %q, want the API's message", msg)
	}
}

// landFirst makes every PUT the page sends to another origin (the bucket)
// land once before the page's own: the page's PUT then finds an object
// there, as a PUT the browser retried after its first try landed does.
// window.firstPut holds the first try's status.
const landFirst = `(() => {
  const open = XMLHttpRequest.prototype.open;
  const setHeader = XMLHttpRequest.prototype.setRequestHeader;
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.open = function (method, url) {
    this.sent = { method, url, headers: {} };
    return open.apply(this, arguments);
  };
  XMLHttpRequest.prototype.setRequestHeader = function (k, v) {
    this.sent.headers[k] = v;
    return setHeader.apply(this, arguments);
  };
  XMLHttpRequest.prototype.send = function (body) {
    const { method, url, headers } = this.sent;
    if (method !== "PUT" || new URL(url, location.href).origin === location.origin) return send.call(this, body);
    const then = (status) => { window.firstPut = status; send.call(this, body); };
    fetch(url, { method, headers, body }).then((r) => then(r.status), (err) => then(String(err)));
  };
})()`

// TestPageDirectUploadAlreadyLanded: a direct upload whose PUT finds its
// object already there (412: the URL is signed with If-None-Match: *)
// goes on to complete it instead of showing an error.
func TestPageDirectUploadAlreadyLanded(t *testing.T) {
	env := testenv.S3Bucket(t).Env()
	env["DATABASE_PATH"] = filepath.Join(t.TempDir(), "app.db")
	env["MAX_UPLOAD_BYTES"] = fmt.Sprint(64 << 20)
	a := startApp(t, env)
	p := openPage(t, a.url+"/")
	data := make([]byte, 12<<20) // past the page's 8 MiB direct threshold
	rand.Read(data)
	path := filepath.Join(t.TempDir(), "landed.bin")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p.run(t, "uploading",
		chromedp.Evaluate[chromedp.Void](landFirst),
		chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{path}),
		chromedp.Click(chromedp.CSS("#file-upload")),
	)
	p.until(t, "the upload ends", `document.querySelector('button[aria-label="Download landed.bin"]') || !document.getElementById("error").hidden`)
	if shown, _ := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`!document.getElementById("error").hidden`)); shown {
		t.Fatalf("the page shows an error: %q", p.text(t, "#error"))
	}
	first, err := chromedp.Run(p.ctx, chromedp.Evaluate[any](`window.firstPut`))
	if err != nil || first != float64(200) {
		t.Fatalf("the first PUT answered %v (%v), want 200", first, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.problems) != 1 || !strings.Contains(p.problems[0], "request failed: 412") {
		t.Errorf("the browser saw %q, want only the second PUT's 412", p.problems)
	}
	files := a.get(t, "/api/files").json(t)["files"].([]any)
	if len(files) != 1 || files[0].(map[string]any)["size"] != float64(len(data)) {
		t.Errorf("the API lists %v, want the one file of %d bytes", files, len(data))
	}
}
