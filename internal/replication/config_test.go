package replication

import (
	"errors"
	"testing"
	"time"

	"github.com/example/flystorage/internal/config"
)

func TestLoad(t *testing.T) {
	getenv := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := Load(getenv(nil))
	if err != nil || !c.Enabled || c.Prefix != DefaultPrefix || c.Durability != Local || c.SyncInterval != time.Second ||
		c.LeaseTTL != 30*time.Second || c.VerifyInterval != time.Hour {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	c, err = Load(getenv(map[string]string{"SQLITE_REPLICATION": "off", "SQLITE_DURABILITY": "Replicated",
		"SQLITE_REPLICA_PREFIX": "/db/main/", "BACKUP_VERIFY_INTERVAL": "0", "SQLITE_SYNC_INTERVAL": "250ms"}))
	if err != nil || c.Enabled || c.Durability != Replicated || c.Prefix != "db/main" || c.VerifyInterval != 0 || c.SyncInterval != 250*time.Millisecond {
		t.Errorf("set: %+v, %v", c, err)
	}
	for name, value := range map[string]string{
		"SQLITE_REPLICATION":    "maybe",
		"SQLITE_DURABILITY":     "remote",
		"SQLITE_REPLICA_PREFIX": "a//b",
		"SQLITE_SYNC_INTERVAL":  "1ms",
		"SQLITE_LEASE_TTL":      "1s",
		"SQLITE_RETENTION":      "soon",
	} {
		_, err := Load(getenv(map[string]string{name: value}))
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Var != name {
			t.Errorf("%s=%s: %v, want an error naming it", name, value, err)
		}
	}
}
