package sqlite

import "time"

// parseTime reads a time stored in timeFormat. It is time.Parse(timeFormat,
// s) for every string of that exact shape, and falls back to it for any
// other, so its errors are time.Parse's; the fast path matters because
// every note read parses two.
func parseTime(s string) (time.Time, error) {
	// 2006-01-02T15:04:05.000000Z
	// 0123456789012345678901234567
	if len(s) != len(timeFormat) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
		s[16] != ':' || s[19] != '.' || s[26] != 'Z' {
		return time.Parse(timeFormat, s)
	}
	num := func(from, to int) (int, bool) {
		n := 0
		for i := from; i < to; i++ {
			c := s[i] - '0'
			if c > 9 {
				return 0, false
			}
			n = n*10 + int(c)
		}
		return n, true
	}
	year, ok1 := num(0, 4)
	month, ok2 := num(5, 7)
	day, ok3 := num(8, 10)
	hour, ok4 := num(11, 13)
	minute, ok5 := num(14, 16)
	sec, ok6 := num(17, 19)
	micro, ok7 := num(20, 26)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || month < 1 || month > 12 || day < 1 ||
		day > daysIn(time.Month(month), year) || hour > 23 || minute > 59 || sec > 59 {
		return time.Parse(timeFormat, s)
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, micro*1000, time.UTC), nil
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}
