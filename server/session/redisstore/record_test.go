package redisstore

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custodian-bff/custodian/server/session"
)

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 678901234, time.UTC)
	cases := map[string]session.Record{
		"empty": {},
		"live": {Subject: "alice", SID: "sid-1", Created: now, LastSeen: now.Add(time.Nanosecond),
			AbsoluteExpiry: now.Add(12 * time.Hour), Expires: now.Add(time.Hour), Sealed: []byte("box")},
		"tombstone":    {Created: now, Expires: now.Add(time.Minute), Ended: session.ReasonRefreshFailed},
		"binary":       {Subject: "\x00}{\xff", SID: "{sid}", Sealed: []byte{0, 0xff, '\r', '\n'}, Expires: now},
		"long fields":  {Subject: strings.Repeat("s", maxFieldLen), SID: strings.Repeat("i", maxFieldLen), Expires: now},
		"before 1970":  {Created: time.Date(1969, 7, 20, 20, 17, 0, 0, time.UTC), Expires: now},
		"unix epoch":   {Created: time.Unix(0, 0), Expires: now},
		"odd reason":   {Ended: session.Reason(-7), Expires: now},
		"large sealed": {Sealed: bytes.Repeat([]byte{7}, 1<<16), Expires: now},
	}
	for name, rec := range cases {
		t.Run(name, func(t *testing.T) {
			if err := checkRecord(&rec); err != nil {
				t.Fatal(err)
			}
			v := encodeRecord(nil, &rec, 12345)
			d, err := decodeRecord(string(v))
			if err != nil {
				t.Fatal(err)
			}
			got := d.Record
			if got.Subject != rec.Subject || got.SID != rec.SID || got.Ended != rec.Ended || !bytes.Equal(got.Sealed, rec.Sealed) ||
				!got.Created.Equal(rec.Created) || !got.LastSeen.Equal(rec.LastSeen) ||
				!got.AbsoluteExpiry.Equal(rec.AbsoluteExpiry) || !got.Expires.Equal(rec.Expires) ||
				got.Created.IsZero() != rec.Created.IsZero() || d.indexedUntil != 12345 {
				t.Errorf("decoded %+v (indexed until %d), want %+v", got, d.indexedUntil, rec)
			}
		})
	}
}

func TestCheckRecord(t *testing.T) {
	t.Parallel()
	for name, rec := range map[string]session.Record{
		"long subject": {Subject: strings.Repeat("s", maxFieldLen+1)},
		"long sid":     {SID: strings.Repeat("s", maxFieldLen+1)},
		"year 1600":    {Created: time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)},
		"year 2300":    {Expires: time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if err := checkRecord(&rec); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestTimeOrder checks what the Lua scripts rely on: encoded times sort as
// bytes as the times do.
func TestTimeOrder(t *testing.T) {
	t.Parallel()
	times := []time.Time{
		{},
		time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Unix(0, 0),
		time.Unix(0, 1),
		time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		time.Date(2030, 1, 2, 3, 4, 5, 1, time.UTC),
		time.Unix(1<<32-1, 0), // 2106
		time.Unix(1<<32, 0),
		time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	encoded := make([]string, len(times))
	for i, tm := range times {
		encoded[i] = string(timeBytes(tm))
	}
	if !slices.IsSorted(encoded) {
		t.Errorf("encoded times are not in time order: %q", encoded)
	}
}

func FuzzDecodeRecord(f *testing.F) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Add(string(encodeRecord(nil, &session.Record{Subject: "a", SID: "b", Expires: now, Sealed: []byte("c")}, notIndexed)))
	f.Add(string(encodeRecord(nil, &session.Record{}, 0)))
	f.Add("\x01")
	f.Fuzz(func(t *testing.T, v string) {
		d, err := decodeRecord(v)
		if err != nil {
			return
		}
		// What decodes encodes back to the same bytes.
		if again := encodeRecord(nil, &d.Record, d.indexedUntil); string(again) != v {
			t.Errorf("re-encoded %q, want %q", again, v)
		}
	})
}
