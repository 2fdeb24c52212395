package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/example/flystorage/internal/testenv"
)

// The dashboard's tests: each panel shows what /api/storage and
// /api/status say, a figure moves with no reload, paging reaches the end,
// a delete asks first, and axe-core finds nothing serious. Set
// PAGE_SCREENSHOTS to a directory (docs/, from the repository's root:
// PAGE_SCREENSHOTS=$PWD/docs) to keep the screenshots they take.

// storageJSON is the part of /api/storage the panels show.
type storageJSON struct {
	Database map[string]string
	Files    map[string]string
	Cache    map[string]any
	Region   map[string]string
	// Replication is SQLite's, when the app replicates its file.
	Replication *struct {
		Role, Holder, Machine, Durability, Replica string
		LocalTXID                                  string  `json:"local_txid"`
		ReplicatedTXID                             string  `json:"replicated_txid"`
		LagSeconds                                 float64 `json:"lag_seconds"`
		LastVerified                               string  `json:"last_verified"`
	}
}

func storageOf(t *testing.T, a *testApp) storageJSON {
	t.Helper()
	r := a.get(t, "/api/storage")
	expect(t, "/api/storage", r, 200)
	var s storageJSON
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("/api/storage: %v", err)
	}
	return s
}

// statusJSON is the part of /api/status the tests compare with the page.
type statusJSON struct {
	Pools      []map[string]any
	NotesTotal *int64 `json:"notes_total"`
	FilesTotal *int64 `json:"files_total"`
}

func statusOf(t *testing.T, a *testApp) statusJSON {
	t.Helper()
	r := a.get(t, "/api/status")
	expect(t, "/api/status", r, 200)
	var s statusJSON
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("/api/status: %v", err)
	}
	return s
}

// poolsOf is /api/status's pools.
func poolsOf(t *testing.T, a *testApp) []map[string]any {
	t.Helper()
	return statusOf(t, a).Pools
}

// until waits for a JavaScript expression to be true on the page, as the
// page's own polling changes it.
func (p *page) until(t *testing.T, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Poll[bool]("!!("+expr+")", chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("waiting until %s (%s): %v", what, expr, err)
	}
}

// textOf is an element's text, by id, as shown.
func textOf(id string) string {
	return fmt.Sprintf(`document.getElementById(%q).textContent`, id)
}

// expectTexts checks elements, by id, show exactly the texts given.
func (p *page) expectTexts(t *testing.T, want map[string]string) {
	t.Helper()
	for id, w := range want {
		got, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](textOf(id)))
		if err != nil || got != w {
			t.Errorf("#%s shows %q (%v), want %q", id, got, err, w)
		}
	}
}

// expectMatch checks an element, by id, shows text matching re.
func (p *page) expectMatch(t *testing.T, id, re string) {
	t.Helper()
	got, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](textOf(id)))
	if err != nil || !regexp.MustCompile(re).MatchString(got) {
		t.Errorf("#%s shows %q (%v), want it to match %s", id, got, err, re)
	}
}

// expectPools checks the database panel names every pool /api/status
// reports, with its maximum.
func (p *page) expectPools(t *testing.T, a *testApp) {
	t.Helper()
	pools := poolsOf(t, a)
	if len(pools) == 0 {
		t.Fatal("/api/status reports no pool")
	}
	for _, pool := range pools {
		p.expectMatch(t, "db-pool", fmt.Sprintf(`(?m)^%s: \d+ in use, \d+ idle, max %v$`, pool["name"], pool["max"]))
	}
}

// accessible runs axe-core in the page and fails on every violation of
// serious or critical impact.
func (p *page) accessible(t *testing.T) {
	t.Helper()
	src, err := os.ReadFile(testenv.AxeCore(t))
	if err != nil {
		t.Fatalf("reading axe-core: %v", err)
	}
	// The test injects it over the DevTools protocol, which the page's
	// Content-Security-Policy does not govern; the page never loads it.
	if _, err := chromedp.Run(p.ctx, chromedp.Evaluate[any](string(src)+";0")); err != nil {
		t.Fatalf("loading axe-core: %v", err)
	}
	type violation struct {
		ID, Impact, Help string
		Nodes            []struct{ Target []string }
	}
	type results struct {
		Violations []violation
		Passes     []struct{ ID string }
	}
	result, err := chromedp.Run(p.ctx, chromedp.Evaluate[results](`axe.run(document).then(r => ({violations: r.violations, passes: r.passes.map(p => ({id: p.id}))}))`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("running axe-core: %v", err)
	}
	if len(result.Passes) == 0 {
		t.Fatal("axe-core checked nothing: no rule passed")
	}
	found := result.Violations
	serious := 0
	for _, v := range found {
		var where []string
		for _, n := range v.Nodes {
			where = append(where, strings.Join(n.Target, " "))
		}
		if v.Impact == "serious" || v.Impact == "critical" {
			serious++
			t.Errorf("axe-core: %s (%s): %s, at %s", v.ID, v.Impact, v.Help, strings.Join(where, ", "))
		} else {
			t.Logf("axe-core, %s: %s (%s), at %s", v.Impact, v.ID, v.Help, strings.Join(where, ", "))
		}
	}
	t.Logf("axe-core: %d rules passed, %d violations, %d serious or critical", len(result.Passes), len(found), serious)
}

// traffic reads path on a a few times between each of the page's next
// polls, so the screenshots' request chart has a line to show.
func (p *page) traffic(t *testing.T, a *testApp, path string) {
	t.Helper()
	polls, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`Number(document.body.dataset.polls)`))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		p.until(t, "the page polls again", fmt.Sprintf(`Number(document.body.dataset.polls) >= %d`, polls+i))
		for range 1 + i%3*2 {
			expect(t, "a read", a.get(t, path), 200)
		}
	}
	p.until(t, "the page polls again", fmt.Sprintf(`Number(document.body.dataset.polls) >= %d`, polls+7))
}

// dark switches the page to its dark colours, as a system set to dark
// mode would.
func (p *page) dark(t *testing.T) {
	t.Helper()
	if _, err := chromedp.Call(p.ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	}); err != nil {
		t.Fatalf("switching to dark mode: %v", err)
	}
}

// screenshots takes the page at desktop and phone width, keeping them in
// PAGE_SCREENSHOTS as name-desktop.png and name-phone.png when it is set.
// It leaves the viewport at desktop width.
func (p *page) screenshots(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("PAGE_SCREENSHOTS")
	for _, size := range []struct {
		suffix        string
		width, height int64
	}{{"phone", 390, 844}, {"desktop", 1280, 1000}} {
		p.run(t, "resizing", chromedp.EmulateViewport(size.width, size.height))
		png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot at %dpx: %v", size.width, err)
		}
		width, err := chromedp.Run(p.ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
		if err != nil || width > size.width {
			t.Errorf("on a %dpx screen the page is %dpx wide (%v)", size.width, width, err)
		}
		if dir != "" {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%s.png", name, size.suffix)), png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// confirmsDelete clicks the Delete button labelled label, checks the
// dialog that asks (axe-core too), keeps the item, then deletes it; gone
// waits for it to leave.
func (p *page) confirmsDelete(t *testing.T, label, question string, gone chromedp.Action[chromedp.Void]) {
	t.Helper()
	del := chromedp.CSS(fmt.Sprintf(`button[aria-label=%q]`, label))
	p.run(t, "asking to delete", chromedp.Click(del))
	p.until(t, "the dialog asks", `document.getElementById("confirm").open`)
	if q := p.text(t, "#confirm-text"); !strings.Contains(q, question) {
		t.Errorf("the dialog asks %q, want it to name %q", q, question)
	}
	focused, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.activeElement.id`))
	if err != nil || focused != "confirm-keep" {
		t.Errorf("the dialog has focus on #%s (%v), want #confirm-keep", focused, err)
	}
	p.accessible(t) // with the dialog open
	p.run(t, "keeping it",
		chromedp.Click(chromedp.CSS("#confirm-keep")),
		chromedp.WaitNotVisible(chromedp.CSS("#confirm")),
		chromedp.WaitVisible(del),
	)
	p.run(t, "deleting it",
		chromedp.Click(del),
		chromedp.WaitVisible(chromedp.CSS("#confirm")),
		chromedp.Click(chromedp.CSS("#confirm-delete")),
		gone,
	)
}

// checkSQLiteReplication checks the replication panel against SQLite's
// replication in /api/storage.
func (p *page) checkSQLiteReplication(t *testing.T, s storageJSON) {
	t.Helper()
	r := s.Replication
	p.until(t, "the replication panel shows", `!document.getElementById("panel-replication").hidden`)
	p.expectTexts(t, map[string]string{
		"db-role": r.Role, "repl-role": r.Role, "repl-holder": r.Holder, "repl-machine": r.Machine, "repl-replica": r.Replica,
	})
	p.expectMatch(t, "repl-local-txid", `^[0-9a-f]{16}$`)
	p.expectMatch(t, "repl-replicated-txid", `^[0-9a-f]{16}$`)
	p.expectMatch(t, "repl-lag", `^[0-9.]+ s$`)
	p.expectMatch(t, "repl-durability", "^"+r.Durability+": ")
	if r.LastVerified == "" {
		p.expectTexts(t, map[string]string{"repl-verified": "not verified yet"})
	} else {
		p.expectMatch(t, "repl-verified", `\((\d+ (s|min|h|days) ago)\)$`)
	}
}

func TestPageDashboardSQLite(t *testing.T) {
	a := localApp(t, nil)
	for _, title := range []string{"Groceries", "Ideas for the launch", "Meeting notes"} {
		expect(t, "a note", a.sendJSON(t, "POST", "/api/notes", fmt.Sprintf(`{"title":%q,"body":"written before the page opened"}`, title)), 201)
	}
	expect(t, "a file", a.upload(t, "report.pdf", "application/pdf", []byte("%PDF-1.4 a small report")), 201)
	p := openPage(t, a.url+"/")
	p.until(t, "the panels and lists are drawn", textOf("db-writes")+`.includes("since start") && `+textOf("notes-count")+` && `+textOf("files-count"))

	s := storageOf(t, a)
	p.expectTexts(t, map[string]string{
		"db-engine": s.Database["backend"], "db-role": "primary", "db-tls": "not needed: a file on this machine",
		"database-state": "Answers.", "files-state": "Answers.",
		"fs-backend": "a directory on this machine", "fs-where-label": "Directory", "fs-where": s.Files["dir"],
		"fs-access":     "private: signed links that expire",
		"cache-backend": "none", "cache-state": "No Redis (REDIS_URL is not set): reads go to the database.",
		"region-here": s.Region["region"], "region-primary": s.Region["primary_region"],
		"region-writes": "this machine", "region-reads": "this machine",
		"notes-count": "3 of 3", "files-count": "1 of 1",
	})
	p.expectPools(t, a)
	if s.Replication != nil {
		p.checkSQLiteReplication(t, s)
	} else if hidden, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`document.getElementById("panel-replication").hidden`)); err != nil || !hidden {
		t.Errorf("with no replication the replication panel shows (%v)", err)
	}
	p.accessible(t)
	p.dark(t)
	p.accessible(t) // the dark colours too
	p.traffic(t, a, "/api/notes")
	p.screenshots(t, "page-sqlite-dark")

	// Notes written elsewhere move the dashboard's write count, with no
	// reload: 3 notes and a file before, 250 notes now.
	for i := range 250 {
		expect(t, "a note", a.sendJSON(t, "POST", "/api/notes", fmt.Sprintf(`{"title":"note %d"}`, i+1)), 201)
	}
	p.until(t, "the page counts the writes", textOf("db-writes")+`.endsWith("(254 since start)")`)
	p.until(t, "the chart draws the writes", `document.querySelector("#chart-requests polyline.writes") !== null`)

	// "Load more" pages through all of them with the API's cursor, the
	// count saying how far it is from the total /api/status gives, which
	// the page knows before it reaches the end. The count may trail the
	// writes by a few seconds: wait for it.
	p.run(t, "reloading", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#notes > li:nth-child(50)")))
	p.until(t, "the page shows the total", textOf("notes-count")+` === "50 of 253"`)
	if got := statusOf(t, a).NotesTotal; got == nil || *got != 253 {
		t.Errorf("/api/status gives notes_total %v, want 253", got)
	}
	for shown := 100; shown <= 300; shown += 50 {
		p.run(t, "loading more",
			chromedp.Click(chromedp.CSS("#notes-more")),
			chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf("#notes > li:nth-child(%d)", min(shown, 253)))))
		p.until(t, "the count follows", textOf("notes-count")+fmt.Sprintf(` === "%d of 253"`, min(shown, 253)))
	}
	p.run(t, "loading the last", chromedp.WaitNotVisible(chromedp.CSS("#notes-more")))
	if n, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`document.querySelectorAll("#notes > li").length`)); err != nil || n != 253 {
		t.Errorf("the list holds %d notes (%v), want 253", n, err)
	}
	p.run(t, "finding the 250th note", chromedp.WaitVisible(`//ul[@id="notes"]/li[250]//strong[text()="note 1"]`))

	// A delete asks first.
	p.confirmsDelete(t, "Delete note note 1", "note 1",
		chromedp.WaitNotPresent(`//ul[@id="notes"]/li//strong[text()="note 1"]`))
	// Focus stays in the list, on the next note's first button.
	focused, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.activeElement.getAttribute("aria-label")`))
	if err != nil || focused != "Edit note Meeting notes" {
		t.Errorf("after the delete, focus is on %q (%v), want the next note's Edit button", focused, err)
	}
	// The list drops the note at once, the total with a later count.
	p.until(t, "the total follows the delete", textOf("notes-count")+` === "252 of 252"`)
	p.confirmsDelete(t, "Delete file report.pdf", "report.pdf",
		chromedp.WaitNotPresent(`//ul[@id="files"]/li//strong[text()="report.pdf"]`))
	if files := a.get(t, "/api/files").json(t)["files"].([]any); len(files) != 0 {
		t.Errorf("after deleting in the page the API lists %d files", len(files))
	}

	// On a phone, Notes and Files start closed under the panels, and one
	// tap opens them.
	p.run(t, "opening on a phone",
		chromedp.EmulateViewport(390, 844),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS("#notes-section > summary")),
	)
	closed, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`!document.getElementById("notes-section").open && !document.getElementById("files-section").open`))
	if err != nil || !closed {
		t.Errorf("on a phone the notes and files sections start open (%v)", err)
	}
	p.run(t, "opening the notes",
		chromedp.Click(chromedp.CSS("#notes-section > summary")),
		chromedp.WaitVisible(`//ul[@id="notes"]/li//strong[text()="note 250"]`),
	)
	p.until(t, "the notes section opens", `document.getElementById("notes-section").open`)
	if width, err := chromedp.Run(p.ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`)); err != nil || width > 390 {
		t.Errorf("on a 390px screen the page is %dpx wide (%v)", width, err)
	}
	p.noProblems(t)
}

// TestPageDashboardSQLiteOnBucket: SQLite with its files in a bucket,
// where SQLite's replication to the bucket shows in its panel when the
// app reports one.
func TestPageDashboardSQLiteOnBucket(t *testing.T) {
	env := testenv.S3Bucket(t).Env()
	env["DATABASE_PATH"] = filepath.Join(t.TempDir(), "volume", "app.db")
	env["FLY_MACHINE_ID"] = "e2865d1bc44d08"
	a := startApp(t, env)
	expect(t, "a note", a.sendJSON(t, "POST", "/api/notes", `{"title":"replicated"}`), 201)
	p := openPage(t, a.url+"/")
	p.until(t, "the panels are drawn", textOf("db-writes")+`.includes("since start")`)
	s := storageOf(t, a)
	p.expectTexts(t, map[string]string{"db-engine": "sqlite", "fs-where-label": "Bucket", "fs-where": s.Files["bucket"]})
	if s.Replication == nil {
		if hidden, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](`document.getElementById("panel-replication").hidden`)); err != nil || !hidden {
			t.Errorf("with no replication in /api/storage the replication panel shows (%v)", err)
		}
	} else {
		p.checkSQLiteReplication(t, s)
		p.traffic(t, a, "/api/notes")
		p.until(t, "the lag chart draws", `document.querySelector("#chart-lag polyline.lag") !== null`)
		p.screenshots(t, "page-sqlite-replication")
	}
	p.accessible(t)
	p.noProblems(t)
}

// TestPageDashboardPostgresReplica opens the page in a replica region,
// syd, whose app reads from a streaming replica and writes through the
// primary in ord, with files in MinIO and a Redis cache.
func TestPageDashboardPostgresReplica(t *testing.T) {
	pair := testenv.Replication(t)
	bucket := testenv.S3Bucket(t)
	redis := testenv.StartRedis(t)
	start := func(extra map[string]string) *testApp {
		env := bucket.Env()
		env["DATABASE_URL"] = pair.PrimaryURL()
		env["REDIS_URL"] = redis.URL()
		env["REDIS_TIMEOUT"] = "2s" // generous, as the test machines are busy
		env["PRIMARY_REGION"] = "ord"
		for k, v := range extra {
			env[k] = v
		}
		return startApp(t, env)
	}
	ord := start(map[string]string{"FLY_REGION": "ord", "MIGRATE_ON_START": "true"})
	var ids []string
	for _, title := range []string{"Shipping plan", "Replica checklist", "Standup"} {
		r := ord.sendJSON(t, "POST", "/api/notes", fmt.Sprintf(`{"title":%q,"body":"written in ord"}`, title))
		expect(t, "a note in ord", r, 201)
		ids = append(ids, r.id())
	}
	expect(t, "a file in ord", ord.upload(t, "diagram.png", "image/png", []byte("\x89PNG a small diagram")), 201)
	pair.WaitReplayed(t)
	syd := start(map[string]string{"FLY_REGION": "syd", "DATABASE_READ_URL": pair.ReplicaURL()})

	p := openPage(t, syd.url+"/")
	p.until(t, "the panels and lists are drawn", textOf("db-writes")+`.includes("since start") && `+textOf("notes-count")+` && `+textOf("files-count")+
		` && !document.getElementById("panel-replication").hidden`)
	s := storageOf(t, syd)
	p.expectTexts(t, map[string]string{
		"db-engine": s.Database["backend"], "db-tls": map[string]string{"true": "yes", "false": "no"}[s.Database["tls"]],
		"db-role":        "replica: reads from DATABASE_READ_URL, writes go to the primary",
		"database-state": "Answers.", "files-state": "Answers.",
		"fs-where-label": "Bucket", "fs-where": s.Files["bucket"], "fs-backend": "S3 (" + s.Files["endpoint"] + ")",
		"fs-access":     "private: signed links that expire",
		"cache-backend": "Redis", "cache-ttl": s.Cache["cache_ttl"].(string), "cache-state": "Up: Redis answers.",
		"region-here": "syd", "region-primary": "ord", "region-writes": s.Region["writes"], "region-reads": s.Region["reads"],
		"region-state": "This machine is in syd; the primary region is ord.",
		"repl-kind":    "Postgres, streaming", "repl-reads": "the replica (DATABASE_READ_URL)", "repl-wait": s.Region["replica_wait"],
		"replication-state": "The replica answers.",
		"notes-count":       "3 of 3", "files-count": "1 of 1",
	})
	// The totals are counted on the replica, which has replayed the notes
	// and the file, and the page shows them.
	st := statusOf(t, syd)
	if st.NotesTotal == nil || *st.NotesTotal != 3 || st.FilesTotal == nil || *st.FilesTotal != 1 {
		t.Errorf("/api/status in syd gives notes_total %v and files_total %v, want 3 and 1", st.NotesTotal, st.FilesTotal)
	} else {
		p.until(t, "the page shows the totals", textOf("notes-count")+fmt.Sprintf(` === "3 of %d" && `, *st.NotesTotal)+
			textOf("files-count")+fmt.Sprintf(` === "1 of %d"`, *st.FilesTotal))
	}
	p.expectMatch(t, "repl-lag-seconds", `^\d+\.\d{3} s$`)
	p.expectMatch(t, "repl-lag-bytes", `^\d+ bytes$`)
	p.expectPools(t, syd)

	// Reads in syd go through the cache: the hit ratio moves on screen. A
	// read from the replica never fills the cache (service.fromReplica),
	// so the note is read in ord first, which fills it from the primary.
	expect(t, "a note read in ord", ord.get(t, "/api/notes/"+ids[0]), 200)
	expect(t, "a note read in syd", syd.get(t, "/api/notes/"+ids[0]), 200)
	p.until(t, "the page shows the cache hit", textOf("cache-ratio")+`.includes("1 hits")`)
	p.until(t, "the lag chart draws", `document.querySelector("#chart-lag polyline.lag") !== null`)
	p.accessible(t)
	p.traffic(t, syd, "/api/notes/"+ids[1])
	p.screenshots(t, "page-postgres")

	// Secrets never reach the page: not in its HTML, not in what its
	// script fetched and drew.
	seen, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`Promise.all(["/api/storage", "/api/status", "/readyz"]
		.map(u => fetch(u).then(r => r.text()))).then(t => document.documentElement.outerHTML + t.join(""))`, chromedp.EvalAwaitPromise))
	if err != nil || strings.Contains(seen, bucket.SecretAccessKey) || !strings.Contains(seen, bucket.Bucket) {
		t.Errorf("the page and what it reads hold the bucket's secret key, or not its name (%v)", err)
	}

	// A store that does not answer is named in words in its panel: Redis,
	// the replica, then the primary (whose /readyz answers 503).
	redis.Kill(t)
	p.until(t, "the cache panel says Redis is down", textOf("cache-state")+`.startsWith("Degraded: Redis does not answer")`)
	pair.Replica.Stop(t)
	p.until(t, "the replication panel says the replica is down", textOf("replication-state")+` === "Cannot reach the replica: its lag is unknown."`)
	p.noProblems(t)
	pair.Primary.Stop(t)
	p.until(t, "the database panel says the primary is down", textOf("database-state")+`.startsWith("Cannot reach the database: ")`)
	p.expectMatch(t, "readiness", `^Not ready: database\.$`)
}

// TestPageCancelsUpload: an upload slowed to 256 KiB/s is cancelled part
// way, and the app keeps nothing of it.
func TestPageCancelsUpload(t *testing.T) {
	a := localApp(t, map[string]string{"MAX_UPLOAD_BYTES": fmt.Sprint(64 << 20)})
	p := openPage(t, a.url+"/")
	path := filepath.Join(t.TempDir(), "upload.bin")
	if err := os.WriteFile(path, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(p.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{UploadThroughput: 256 << 10, DownloadThroughput: -1}},
	}); err != nil {
		t.Fatalf("slowing the network: %v", err)
	}
	p.run(t, "uploading",
		chromedp.SetUploadFiles(chromedp.CSS("#file-input"), []string{path}),
		chromedp.Click(chromedp.CSS("#file-upload")),
	)
	p.until(t, "the upload is under way", `Number(document.getElementById("upload-progress").dataset.sent) > 0`)
	p.run(t, "cancelling", chromedp.Click(chromedp.CSS("#upload-cancel")))
	p.until(t, "the page says it is cancelled", textOf("upload-status")+` === "Cancelled: upload.bin was not uploaded."`)
	p.expectTexts(t, map[string]string{"files-count": "0 of 0"})
	if files := a.get(t, "/api/files").json(t)["files"].([]any); len(files) != 0 {
		t.Errorf("after a cancelled upload the API lists %d files", len(files))
	}
	p.noProblems(t)
}
