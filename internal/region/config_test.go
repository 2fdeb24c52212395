package region

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/example/flystorage/internal/config"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoad(t *testing.T) {
	c, err := Load(env(map[string]string{"FLY_REGION": "syd", "PRIMARY_REGION": " ord ", "REPLICA_WAIT": "250ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Replica() || c.PrimaryRegion != "ord" || c.Wait != 250*time.Millisecond {
		t.Fatalf("got %+v", c)
	}
	if s := c.String(); !strings.Contains(s, "syd") {
		t.Errorf("String() = %s: must name the region", s)
	}

	c, err = Load(env(nil))
	if err != nil || c.Replica() || c.Wait != DefaultWait {
		t.Fatalf("nothing set: got %+v, %v; want no replica region and the default wait", c, err)
	}
	for _, same := range []map[string]string{
		{"FLY_REGION": "ord", "PRIMARY_REGION": "ord"},
		{"FLY_REGION": "syd"},
		{"PRIMARY_REGION": "ord"},
	} {
		if c, _ := Load(env(same)); c.Replica() {
			t.Errorf("%v: Replica() = true, want false", same)
		}
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		varName string
		want    string
	}{
		{map[string]string{"PRIMARY_REGION": "ORD;x"}, "PRIMARY_REGION", "region code"},
		{map[string]string{"FLY_REGION": "s y d"}, "FLY_REGION", "region code"},
		{map[string]string{"REPLICA_WAIT": "soon"}, "REPLICA_WAIT", "soon"},
		{map[string]string{"REPLICA_WAIT": "1m"}, "REPLICA_WAIT", "longer than"},
	} {
		_, err := Load(env(tc.env))
		var cerr *config.Error
		if !errors.As(err, &cerr) || cerr.Var != tc.varName || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want a *config.Error for %s mentioning %q", tc.env, err, tc.varName, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "cret") {
			t.Errorf("%v: error %q shows the password", tc.env, err)
		}
	}
}
