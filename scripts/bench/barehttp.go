package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/example/flystorage/internal/storage"
)

// serveBarePostgres is the Postgres ceiling an HTTP app can reach: net/http
// and pgx alone, serving POST /api/notes and GET /api/notes/{id} with the
// app's JSON, the same queries and the same pool size, and nothing else (no
// logging, metrics, limits, validation or cache). The bare pgx ceiling in
// ceilings.go has no HTTP at all, and on loopback its SELECT alone is faster
// than any HTTP server answers; this one pays for HTTP as the app does, so
// app ÷ this is the app's own overhead. scripts/bench.sh runs it as a
// process of its own, like the app.
func serveBarePostgres(args []string) error {
	f := flag.NewFlagSet("bare-pg-http", flag.ContinueOnError)
	addr := f.String("addr", "127.0.0.1:0", "where to listen")
	url := f.String("pg", "", "the Postgres to use")
	if err := f.Parse(args); err != nil {
		return err
	}
	if err := loopback("http://" + *addr); err != nil {
		return err
	}
	ctx := context.Background()
	db, err := openBarePostgres(ctx, *url)
	if err != nil {
		return fmt.Errorf("connecting to Postgres: %w", err)
	}
	defer db.pool.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.HandleFunc("POST /api/notes", func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Title, Body string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		n := storage.Note{ID: storage.NewID(), Title: in.Title, Body: in.Body, CreatedAt: now, UpdatedAt: now}
		if _, err := db.pool.Exec(r.Context(), `INSERT INTO notes (id, title, body, created_at, updated_at) VALUES ($1, $2, $3, $4, $5)`,
			n.ID, n.Title, n.Body, n.CreatedAt, n.UpdatedAt); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeBareJSON(w, http.StatusCreated, n)
	})
	mux.HandleFunc("GET /api/notes/{id}", func(w http.ResponseWriter, r *http.Request) {
		var n storage.Note
		err := db.pool.QueryRow(r.Context(), `SELECT id, title, body, created_at, updated_at FROM notes WHERE id = $1`,
			r.PathValue("id")).Scan(&n.ID, &n.Title, &n.Body, &n.CreatedAt, &n.UpdatedAt)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			http.NotFound(w, r)
		case err != nil:
			http.Error(w, err.Error(), http.StatusInternalServerError)
		default:
			writeBareJSON(w, http.StatusOK, n)
		}
	})

	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Println("http://" + l.Addr().String()) // scripts/bench.sh reads where
	return http.Serve(l, mux)
}

func writeBareJSON(w http.ResponseWriter, status int, n storage.Note) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		ID        string    `json:"id"`
		Title     string    `json:"title"`
		Body      string    `json:"body"`
		CreatedAt time.Time `json:"created_at"`
		UpdatedAt time.Time `json:"updated_at"`
	}{n.ID, n.Title, n.Body, n.CreatedAt, n.UpdatedAt})
}
