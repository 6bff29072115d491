package ferry

import "time"

// headerTime reads a time a message header carries in layout: in UTC, and
// only if JSON can carry it (a year from 0 to 9999). A header from outside
// may say anything — "+24:00" parses but does not encode — and a record or
// dead letter made from it must still be storable and readable.
func headerTime(layout, v string) (time.Time, bool) {
	t, err := time.Parse(layout, v)
	if err != nil {
		return time.Time{}, false
	}
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		return time.Time{}, false
	}
	return t, true
}
