// Command bench measures the app against what the machine can do: each
// path's figure through the app, then, back to back, its ceiling (the app's
// own GET /healthz, or the bare driver doing the same work), and prints the
// ratio against the target. On a shared machine the absolute numbers move;
// the ratios, measured interleaved, are what it checks. scripts/bench.sh
// starts what it needs; see there.
//
//	bench figures -sqlite-app URL -pg-app URL -pg URL -s3-app URL -s3-app-pid PID ...
//	bench scale -dir DIR
//	bench bare-pg-http -pg URL   (the bare net/http + pgx server)
//	bench bigdb -path P; bench restore -app BIN -dir DIR ...   (the restore figure)
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: bench figures|scale [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "figures":
		err = figures(os.Args[2:])
	case "scale":
		err = scale(os.Args[2:])
	case "bare-pg-http":
		err = serveBarePostgres(os.Args[2:])
	case "rmbucket":
		err = rmbucket(os.Args[2:])
	case "bigdb":
		err = bigDB(os.Args[2:])
	case "restore":
		err = restoreFigure(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q: use figures or scale", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// result is one printed line.
type result struct {
	path, ceiling string
	app, ceil     float64
	unit          string
	target        float64 // the ratio app/ceil must reach; 0: none
	extra         string
	extraOK       bool
}

var failed int

func (r result) print() {
	ratio := r.app / r.ceil
	verdict := "-"
	if r.target > 0 {
		verdict = "PASS"
		if !(ratio >= r.target) || !r.extraOK {
			verdict = "FAIL"
			failed++
		}
	}
	target := "-"
	if r.target > 0 {
		target = fmt.Sprintf(">= %.2f", r.target)
	}
	fmt.Printf("%-32s app %9.0f %-5s ceiling %9.0f  %-30s ratio %.2f  target %-8s %s%s\n",
		r.path, r.app, r.unit, r.ceil, "("+r.ceiling+")", ratio, target, verdict, r.extra)
}

func figures(args []string) error {
	f := flag.NewFlagSet("figures", flag.ContinueOnError)
	sqliteApp := f.String("sqlite-app", "", "base URL of the app on SQLite")
	pgApp := f.String("pg-app", "", "base URL of the app on Postgres")
	pgURL := f.String("pg", "", "the Postgres the pg app uses, for the bare pgx ceiling")
	pgBare := f.String("pg-bare-http", "", "base URL of bench bare-pg-http on that Postgres")
	var up uploadFlags
	up.app = f.String("s3-app", "", "base URL of the app on MinIO, for the upload")
	up.pid = f.Int("s3-app-pid", 0, "that app's process id, for its peak RSS")
	up.endpoint = f.String("s3-endpoint", "", "MinIO's URL, for the bare SDK ceiling")
	up.bucket = f.String("bucket", "", "the bucket both upload to")
	up.partSize = f.Int64("part-size", 8<<20, "the ceiling's part size")
	up.concurrency = f.Int("concurrency", 0, "the ceiling's parts at once; 0: the SDK's default (5)")
	up.size = f.Int64("upload-size", 1<<30, "bytes to upload")
	up.dir = f.String("upload-dir", os.TempDir(), "where to write the file both uploads send")
	up.rounds = f.Int("upload-rounds", 3, "uploads through the app, each followed by the ceiling's")
	up.maxRSS = f.Int64("max-rss", 48<<20, "the app's peak RSS bound during the upload")
	sqliteDB := f.String("bare-sqlite", "", "a scratch SQLite file for the bare modernc ceiling")
	lsLocal := f.String("litestream-app", "", "base URL of the app on SQLite replicated to MinIO (SQLITE_DURABILITY=local); its ceiling is -sqlite-app")
	lsReplicated := f.String("litestream-replicated-app", "", "the same with SQLITE_DURABILITY=replicated")
	d := f.Duration("d", 5*time.Second, "duration of each figure")
	c := f.Int("c", 16, "concurrent clients")
	only := f.String("only", "", "run only the figures whose path contains this")
	if err := f.Parse(args); err != nil {
		return err
	}
	for _, u := range []string{*sqliteApp, *pgApp, *up.app, *lsLocal, *lsReplicated} {
		if u == "" {
			continue
		}
		if err := loopback(u); err != nil {
			return err
		}
	}
	b := bench{ctx: context.Background(), client: newClient(*c), c: *c, d: *d, only: *only}
	if *sqliteApp != "" {
		if err := b.sqliteFigures(*sqliteApp, *sqliteDB); err != nil {
			return err
		}
		b.litestreamFigures(*sqliteApp, *lsLocal, *lsReplicated)
	}
	if *pgApp != "" {
		if err := b.postgresFigures(*pgApp, *pgURL, *pgBare); err != nil {
			return err
		}
	}
	if *up.app != "" {
		if err := b.uploadFigure(up); err != nil {
			return err
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d figures failed", failed)
	}
	return nil
}

// bench is what every figure of one `bench figures` run shares.
type bench struct {
	ctx    context.Context
	client *http.Client
	c      int           // concurrent clients
	d      time.Duration // each figure's duration
	only   string        // run only the figures whose path holds it
}

// measure fills r with its app and ceiling rates, interleaved.
func (b bench) measure(r *result, app, ceiling func(time.Duration) (float64, error)) {
	if !strings.Contains(r.path, b.only) {
		return
	}
	var err error
	if r.app, r.ceil, err = pair(b.d, app, ceiling); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", r.path, err)
		failed++
	}
	r.print()
}

// hit is the rate of the requests next makes, each answered with want.
func (b bench) hit(want int, next func(*rand.Rand) (string, string, []byte)) func(time.Duration) (float64, error) {
	return func(d time.Duration) (float64, error) { return httpRate(b.ctx, b.c, d, b.client, want, next) }
}

// direct is the rate of calls to fn.
func (b bench) direct(fn func(context.Context, *rand.Rand) error) func(time.Duration) (float64, error) {
	return func(d time.Duration) (float64, error) { return rate(b.ctx, b.c, d, fn) }
}

// healthz asks base for GET /healthz.
func healthz(base string) func(*rand.Rand) (string, string, []byte) {
	return func(*rand.Rand) (string, string, []byte) { return "GET", base + "/healthz", nil }
}

// sqliteFigures measures the app on SQLite at base, against its own
// /healthz and, with sqliteDB, against bare modernc inserts.
func (b bench) sqliteFigures(base, sqliteDB string) error {
	ctx, hit, measure := b.ctx, b.hit, b.measure
	create := hit(201, func(rng *rand.Rand) (string, string, []byte) { return "POST", base + "/api/notes", noteBody(rng) })
	measure(&result{path: "sqlite POST /api/notes", ceiling: "GET /healthz", unit: "req/s", target: 0.5, extraOK: true},
		create, hit(200, healthz(base)))
	if sqliteDB != "" {
		bare, err := openBareSQLite(sqliteDB)
		if err != nil {
			return err
		}
		measure(&result{path: "sqlite POST /api/notes", ceiling: "bare modernc INSERT per tx", unit: "req/s", extraOK: true},
			create, b.direct(bare.insert))
		bare.db.Close()
	}

	ids, err := createNotes(ctx, b.client, base, 1000)
	if err != nil {
		return err
	}
	get := hit(200, func(rng *rand.Rand) (string, string, []byte) {
		return "GET", base + "/api/notes/" + ids[rng.IntN(len(ids))], nil
	})
	measure(&result{path: "sqlite GET /api/notes/{id}", ceiling: "GET /healthz", unit: "req/s", target: 0.6, extraOK: true},
		get, hit(200, healthz(base)))
	list := hit(200, func(*rand.Rand) (string, string, []byte) { return "GET", base + "/api/notes?limit=20", nil })
	measure(&result{path: "sqlite GET /api/notes?limit=20", ceiling: "GET /healthz", unit: "req/s", target: 0.35, extraOK: true},
		list, hit(200, healthz(base)))
	return nil
}

// litestreamFigures measures replication's cost on writes: the same app,
// with and without its database replicated to the bucket (docs/sqlite.md).
// sqliteApp is the app without a bucket; local and replicated, when set,
// replicate with SQLITE_DURABILITY=local and =replicated.
func (b bench) litestreamFigures(sqliteApp, local, replicated string) {
	createOn := func(base string) func(time.Duration) (float64, error) {
		return b.hit(201, func(rng *rand.Rand) (string, string, []byte) { return "POST", base + "/api/notes", noteBody(rng) })
	}
	if local != "" {
		b.measure(&result{path: "litestream local POST /api/notes", ceiling: "sqlite POST, no bucket", unit: "req/s", target: 0.9, extraOK: true},
			createOn(local), createOn(sqliteApp))
	}
	if replicated != "" {
		b.measure(&result{path: "litestream replicated POST", ceiling: "sqlite POST, no bucket", unit: "req/s", target: 0.3, extraOK: true},
			createOn(replicated), createOn(sqliteApp))
	}
}

// postgresFigures measures the app on Postgres at base against bare pgx
// on pgURL and, with pgBare, a bare net/http server doing the same.
func (b bench) postgresFigures(base, pgURL, pgBare string) error {
	ctx, hit, measure, direct := b.ctx, b.hit, b.measure, b.direct
	bare, err := openBarePostgres(ctx, pgURL)
	if err != nil {
		return fmt.Errorf("connecting to Postgres for the ceiling: %w", err)
	}
	create := hit(201, func(rng *rand.Rand) (string, string, []byte) { return "POST", base + "/api/notes", noteBody(rng) })
	// The in-process ceiling has no HTTP at all, and on loopback it is
	// faster than any HTTP server, /healthz included, can answer. The
	// issue's own figure (about 9,600/s against the app's 7,100/s)
	// fits an HTTP program, not this (twice the app here). So the
	// target is on the bare HTTP ceiling below, and this line only
	// shows what HTTP costs.
	measure(&result{path: "postgres POST /api/notes", ceiling: "bare pgx INSERT, same pool", unit: "req/s", extraOK: true},
		create, direct(bare.insert))
	if pgBare != "" {
		bareCreate := hit(201, func(rng *rand.Rand) (string, string, []byte) { return "POST", pgBare + "/api/notes", noteBody(rng) })
		measure(&result{path: "postgres POST /api/notes", ceiling: "bare net/http + pgx INSERT", unit: "req/s", target: 0.9, extraOK: true},
			create, bareCreate)
	}
	ids, err := createNotes(ctx, b.client, base, 1000)
	if err != nil {
		return err
	}
	bare.ids = ids
	get := hit(200, func(rng *rand.Rand) (string, string, []byte) {
		return "GET", base + "/api/notes/" + ids[rng.IntN(len(ids))], nil
	})
	measure(&result{path: "postgres GET /api/notes/{id}", ceiling: "bare pgx SELECT by id", unit: "req/s", extraOK: true},
		get, direct(bare.selectByID))
	if pgBare != "" {
		bareGet := hit(200, func(rng *rand.Rand) (string, string, []byte) {
			return "GET", pgBare + "/api/notes/" + ids[rng.IntN(len(ids))], nil
		})
		measure(&result{path: "postgres GET /api/notes/{id}", ceiling: "bare net/http + pgx SELECT", unit: "req/s", target: 0.9, extraOK: true},
			get, bareGet)
	}
	measure(&result{path: "postgres GET /api/notes/{id}", ceiling: "GET /healthz", unit: "req/s", extraOK: true},
		get, hit(200, healthz(base)))
	bare.pool.Close()
	return nil
}

// uploadFlags are the upload figure's flags.
type uploadFlags struct {
	app, endpoint, bucket, dir *string
	pid, concurrency, rounds   *int
	partSize, size, maxRSS     *int64
}

// uploadFigure measures an upload through the app on MinIO against the
// bare SDK's, and the app's peak RSS meanwhile.
func (b bench) uploadFigure(up uploadFlags) error {
	ctx, base := b.ctx, *up.app
	bare, err := openBareS3(*up.endpoint, *up.bucket, *up.partSize, *up.concurrency)
	if err != nil {
		return err
	}
	file, err := writeUploadFile(*up.dir, *up.size)
	if err != nil {
		return fmt.Errorf("writing the upload's file: %w", err)
	}
	defer os.Remove(file.path)
	r := result{path: fmt.Sprintf("upload %d MiB POST /api/files", *up.size>>20),
		ceiling: fmt.Sprintf("bare SDK, %d MiB parts", *up.partSize>>20), unit: "MiB/s", target: 0.95}
	// Each round is the app's upload and then the ceiling's, back to
	// back; the round with the median ratio is printed, and the
	// highest peak RSS of the app's uploads, which catches memory
	// that one upload leaves to the next.
	var rounds [][2]float64
	peak := int64(0)
	for range *up.rounds {
		app, rss, err := upload(ctx, b.client, base, *up.pid, file)
		ceil := 0.0
		if err == nil {
			ceil, err = bare.put(ctx, "bench/direct", file)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", r.path, err)
			failed++
			break
		}
		rounds = append(rounds, [2]float64{app, ceil})
		peak = max(peak, rss)
	}
	if len(rounds) > 0 {
		slices.SortFunc(rounds, func(a, b [2]float64) int { return cmp.Compare(a[0]/a[1], b[0]/b[1]) })
		r.app, r.ceil = rounds[len(rounds)/2][0], rounds[len(rounds)/2][1]
	}
	r.extraOK = peak > 0 && peak <= *up.maxRSS
	r.extra = fmt.Sprintf("  median of %d; peak RSS %d MiB (bound %d MiB)", len(rounds), peak>>20, *up.maxRSS>>20)
	r.print()
	return nil
}

// upload sends the upload file through POST /api/files and returns MiB/s
// and the app's peak RSS during it, then deletes the file.
func upload(ctx context.Context, client *http.Client, base string, pid int, file *uploadFile) (float64, int64, error) {
	// Writing 5 to clear_refs resets the peak RSS, so it is the upload's.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		return 0, 0, fmt.Errorf("resetting the app's peak RSS: %w", err)
	}
	f, err := file.open()
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	req, err := http.NewRequestWithContext(ctx, "POST", base+"/api/files", f)
	if err != nil {
		return 0, 0, err
	}
	req.ContentLength = file.total
	req.Header.Set("Content-Type", file.contentType)
	start := time.Now()
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	mibs := float64(file.size) / (1 << 20) / time.Since(start).Seconds()
	if res.StatusCode != http.StatusCreated {
		return 0, 0, fmt.Errorf("%s: %s", res.Status, strings.TrimSpace(string(body)))
	}
	rss, err := peakRSS(pid)
	if err != nil {
		return 0, 0, err
	}
	var stored struct{ ID string }
	if err := json.Unmarshal(body, &stored); err != nil {
		return 0, 0, fmt.Errorf("reading the upload's answer: %w", err)
	}
	del, _ := http.NewRequestWithContext(ctx, "DELETE", base+"/api/files/"+stored.ID, nil)
	if res, err = client.Do(del); err != nil {
		return 0, 0, err
	}
	res.Body.Close()
	return mibs, rss, nil
}
