package mongodb_test

import (
	"testing"

	"github.com/example/flystorage/internal/storage/storagetest"
	"github.com/example/flystorage/internal/testenv"
)

// BenchmarkNotes reports note create and read throughput (notes/s) over the
// driver's pool of 20 connections, shaped like the Postgres benchmark so
// the figures compare (the tests' server is FerretDB, not MongoDB):
//
//	make test TESTFLAGS="-run ^$ -bench Notes ./internal/storage/mongodb"
func BenchmarkNotes(b *testing.B) {
	s := open(b, testenv.MongoURI(b), map[string]string{"DB_MAX_CONNS": "20"})

	storagetest.BenchNotes(b, s)
}
