package mongodb

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/example/flystorage/internal/storage"
)

var _ storage.Counter = (*Store)(nil)

// CountNotes implements storage.Counter with an exact count, not the
// collection's metadata (EstimatedDocumentCount), which may drift after
// an unclean shutdown.
func (s *Store) CountNotes(ctx context.Context) (int64, error) {
	n, err := s.notes.CountDocuments(ctx, bson.D{})
	return n, translate(err)
}

// CountFiles implements storage.Counter: the documents whose state is
// "file", not the upload intents beside them, counted on the state_id
// index.
func (s *Store) CountFiles(ctx context.Context) (int64, error) {
	n, err := s.files.CountDocuments(ctx, bson.D{{Key: "state", Value: stateFile}})
	return n, translate(err)
}
