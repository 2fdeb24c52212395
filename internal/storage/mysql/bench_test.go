package mysql_test

import (
	"testing"

	"github.com/example/flystorage/internal/storage/storagetest"
	"github.com/example/flystorage/internal/testenv"
)

// BenchmarkNotes reports note create and read throughput (notes/s) over
// database/sql straight to MySQL (MariaDB in `make test`), with a pool of
// 20 as the Postgres benchmark uses, so the figures compare:
//
//	make test TESTFLAGS="-run ^$ -bench Notes ./internal/storage/mysql"
func BenchmarkNotes(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		s := open(b, testenv.MySQLURL(b), map[string]string{"DB_MAX_CONNS": "20"})

		storagetest.BenchNotes(b, s)
	})
}
