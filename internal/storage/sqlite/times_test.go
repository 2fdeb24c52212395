package sqlite

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestParseTime: parseTime agrees with time.Parse, value and error, on
// stored times and on strings that are almost stored times.
func TestParseTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	inputs := []string{"", "2024-02-29T23:59:59.999999Z", "2023-02-29T00:00:00.000000Z", "2024-13-01T00:00:00.000000Z",
		"2024-00-10T00:00:00.000000Z", "2024-01-01T24:00:00.000000Z", "2024-01-01T00:60:00.000000Z", "2024-01-01T00:00:60.000000Z",
		"2024-01-01T00:00:00.00000aZ", "2024-01-01 00:00:00.000000Z", "+024-01-01T00:00:00.000000Z", "2024-04-31T00:00:00.000000Z"}
	for range 2000 {
		ts := time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)).UTC().Truncate(time.Microsecond)
		s := []byte(ts.Format(timeFormat))
		inputs = append(inputs, string(s))
		s[rng.IntN(len(s))] = byte(rng.IntN(128)) // and one almost like it
		inputs = append(inputs, string(s))
	}
	for _, s := range inputs {
		want, wantErr := time.Parse(timeFormat, s)
		got, err := parseTime(s)
		if !got.Equal(want) || got.Location() != want.Location() || (err == nil) != (wantErr == nil) {
			t.Errorf("parseTime(%q) = %v, %v; time.Parse: %v, %v", s, got, err, want, wantErr)
		}
	}
}

func BenchmarkParseTime(b *testing.B) {
	s := time.Now().UTC().Format(timeFormat)
	b.Run("parseTime", func(b *testing.B) {
		for b.Loop() {
			parseTime(s)
		}
	})
	b.Run("time.Parse", func(b *testing.B) {
		for b.Loop() {
			time.Parse(timeFormat, s)
		}
	})
}
