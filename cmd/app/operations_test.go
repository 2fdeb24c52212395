package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/example/flystorage/internal/testenv"
)

// TestMetrics exercises the app, then reads /metrics: requests by route
// pattern, method and status, the SQLite pools, blob operations and the
// build are all there.
func TestMetrics(t *testing.T) {
	a := localApp(t, nil)
	expect(t, "create note", a.sendJSON(t, "POST", "/api/notes", `{"title":"counted"}`), 201)
	expect(t, "upload", a.upload(t, "m.txt", "text/plain", []byte("measured")), 201)
	expectError(t, "missing note", a.get(t, "/api/notes/01a20f9f-09cd-7584-a6ae-16e2b0ac4721"), 404, "not_found")
	r := a.get(t, "/metrics")
	expect(t, "metrics", r, 200)
	body := string(r.body)
	for _, want := range []string{
		`flystorage_http_requests_total{method="POST",route="POST /api/notes",status="201"} 1`,
		`flystorage_http_requests_total{method="GET",route="GET /api/notes/{id}",status="404"} 1`,
		`flystorage_http_request_duration_seconds_count{method="POST",route="POST /api/files"} 1`,
		`flystorage_db_pool_max_connections{pool="sqlite_writer"} 1`,
		`flystorage_db_pool_connections{pool="sqlite_readers",state="idle"}`,
		`flystorage_db_pool_connections{pool="sqlite_note_readers",state="in_use"} 0`,
		`flystorage_blob_operations_total{op="put",result="ok"} 1`,
		`flystorage_blob_operation_duration_seconds_count{op="put"} 1`,
		`go_build_info{`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestMetricsPort moves /metrics to METRICS_PORT, off the public port, and
// serves /debug/pprof there only.
func TestMetricsPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	a := localApp(t, map[string]string{"METRICS_PORT": fmt.Sprint(port)})
	expect(t, "/metrics on the public port", a.get(t, "/metrics"), 404)
	if r := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", port)); r.status != 200 || !strings.Contains(string(r.body), "flystorage_http_requests_total") {
		t.Errorf("/metrics on METRICS_PORT: %d", r.status)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap", "/debug/pprof/cmdline"} {
		expect(t, path+" on the public port", a.get(t, path), 404)
	}
	if r := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", port)); r.status != 200 || !strings.Contains(string(r.body), "goroutine") {
		t.Errorf("/debug/pprof/ on METRICS_PORT: %d %.200s", r.status, r.body)
	}
	if r := fetch(t, fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/heap?debug=1", port)); r.status != 200 || !strings.Contains(string(r.body), "heap profile") {
		t.Errorf("/debug/pprof/heap on METRICS_PORT: %d %.200s", r.status, r.body)
	}
}

// TestRequestLog checks the one line per request: JSON on Fly, with the
// route, status, bytes, duration and Fly's request id.
func TestRequestLog(t *testing.T) {
	a := localApp(t, map[string]string{"FLY_APP_NAME": "flystorage-test", "API_TOKEN": apiToken})
	r := a.do(t, "GET", "/api/notes?limit=1", "", nil, "Fly-Request-Id", "01TESTREQUEST-ord")
	expect(t, "list", r, 200)
	if r.header.Get("X-Request-Id") != "01TESTREQUEST-ord" {
		t.Errorf("X-Request-Id = %q, want Fly's request id back", r.header.Get("X-Request-Id"))
	}
	a.stop() // every line written
	var found bool
	for _, line := range strings.Split(strings.TrimSpace(a.logs.String()), "\n") {
		var v map[string]any
		if err := json.Unmarshal([]byte(line), &v); err != nil {
			t.Fatalf("a log line on Fly is not JSON: %q", line)
		}
		if v["msg"] == "request" && v["request_id"] == "01TESTREQUEST-ord" {
			found = true
			if v["route"] != "GET /api/notes" || v["status"] != float64(200) || v["method"] != "GET" || v["bytes"] == nil || v["duration"] == nil {
				t.Errorf("request line %s", line)
			}
		}
	}
	if !found {
		t.Errorf("no request line with the request id in:\n%s", a.logs)
	}
}

// TestAPIToken: with API_TOKEN, writes need it and reads do not.
func TestAPIToken(t *testing.T) {
	a := localApp(t, map[string]string{"API_TOKEN": apiToken})
	anon := &testApp{url: a.url, logs: a.logs}
	for name, r := range map[string]response{
		"no token":    anon.sendJSON(t, "POST", "/api/notes", `{"title":"x"}`),
		"wrong token": anon.do(t, "POST", "/api/notes", "application/json", strings.NewReader(`{"title":"x"}`), "Authorization", "Bearer "+apiToken+"x"),
		"not bearer":  anon.do(t, "DELETE", "/api/notes/01a20f9f-09cd-7584-a6ae-16e2b0ac4721", "", nil, "Authorization", apiToken),
		"upload":      anon.upload(t, "a.txt", "text/plain", []byte("x")),
	} {
		expectError(t, name, r, 401, "unauthorized")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
	}
	expect(t, "write with the token", a.sendJSON(t, "POST", "/api/notes", `{"title":"allowed"}`), 201)
	expect(t, "read without a token", anon.get(t, "/api/notes"), 200)
	expect(t, "file list without a token", anon.get(t, "/api/files"), 200)
	assertNoSecrets(t, a, apiToken)
}

// TestWritesNeedTokenOnFly: on Fly without API_TOKEN, writes are refused
// with a message saying how to set one; reads work.
func TestWritesNeedTokenOnFly(t *testing.T) {
	a := startApp(t, map[string]string{"DATABASE_PATH": filepath.Join(t.TempDir(), "app.db"), "FLY_APP_NAME": "flystorage-test"})
	r := a.sendJSON(t, "POST", "/api/notes", `{"title":"x"}`)
	expectError(t, "write on Fly without API_TOKEN", r, 401, "unauthorized")
	if !strings.Contains(string(r.body), "fly secrets set API_TOKEN") {
		t.Errorf("401 on Fly does not say how to set the token: %s", r.body)
	}
	expect(t, "read on Fly without API_TOKEN", a.get(t, "/api/notes"), 200)
}

// TestSQLiteMachinesShareABucket runs two SQLite machines, each with a
// database of its own (no replication), on one bucket: each keeps its
// files under its own machine id, and neither's sweep looks at the
// other's.
func TestSQLiteMachinesShareABucket(t *testing.T) {
	bucket := testenv.S3Bucket(t)
	machine := func(id string) (map[string]string, *testApp) {
		env := bucket.Env()
		env["DATABASE_PATH"] = filepath.Join(t.TempDir(), "app.db")
		env["FLY_MACHINE_ID"] = id
		env["SQLITE_REPLICATION"] = "off"
		env["FLY_APP_NAME"] = "flystorage-test"
		env["API_TOKEN"] = apiToken
		return env, startApp(t, env)
	}
	envA, a := machine("machine-a")
	_, b := machine("machine-b")
	expect(t, "upload on a", a.upload(t, "a.txt", "text/plain", []byte("from a")), 201)
	expect(t, "upload on b", b.upload(t, "b.txt", "text/plain", []byte("from b")), 201)
	keys := map[string]bool{}
	out, err := bucket.Client().ListObjectsV2(context.Background(), &awss3.ListObjectsV2Input{Bucket: &bucket.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range out.Contents {
		keys[strings.Join(strings.Split(aws.ToString(o.Key), "/")[:2], "/")] = true
	}
	if !keys["files/machine-a"] || !keys["files/machine-b"] || len(keys) != 2 {
		t.Errorf("objects under %v, want files/machine-a/ and files/machine-b/", keys)
	}
	var stdout bytes.Buffer
	if err := runApp(context.Background(), []string{"sweep"}, func(k string) string { return envA[k] }, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout.String(), "checked 1 objects") {
		t.Errorf("machine a's sweep: %q, want it to look at its one object only", stdout.String())
	}
}
