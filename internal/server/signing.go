package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// signingKeyFile holds the generated key in the blob directory. Its name
// starts with a dot, which no blob key may, so no file can shadow it.
const signingKeyFile = ".url-signing-key"

// SigningKey returns the key that signs the app's own URLs for local files:
// configured (URL_SIGNING_KEY) if set, else the one kept in dir, made on
// first use. Keeping it on the volume keeps issued URLs valid across
// restarts.
func SigningKey(configured, dir string) ([]byte, error) {
	if configured != "" {
		return []byte(configured), nil
	}
	path := filepath.Join(dir, signingKeyFile)
	if b, err := os.ReadFile(path); err == nil {
		key, err := hex.DecodeString(strings.TrimSpace(string(b)))
		if err != nil || len(key) < 16 {
			return nil, fmt.Errorf("%s is not a hex key: delete it to make a new one, or set URL_SIGNING_KEY", path)
		}
		return key, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	key := make([]byte, 32)
	rand.Read(key)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return SigningKey("", dir) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("keeping a URL signing key: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		return nil, err
	}
	return key, f.Sync()
}
