package redisstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/custodian-bff/custodian/server/session"
)

// A record is stored as one Redis string, big-endian:
//
//	offset size
//	 0      1   version (recordVersion)
//	 1      4   Ended (int32; 0 while the session lives)
//	 5      8   Expires
//	13      8   LastSeen
//	21      8   Created
//	29      8   AbsoluteExpiry
//	37      8   indexed until: the index entries of Subject and SID last
//	            as long as this (all ones: nothing to index)
//	45      2   len(Subject), then Subject
//	 .      2   len(SID), then SID
//	 .      .   Sealed, to the end
//
// A time is its Unix nanoseconds with the sign bit flipped, so that the
// byte order is the time order (the Lua scripts compare times as bytes),
// and the zero time.Time is all zeros. The clear fields are those of
// session.Record, which are in the clear there too; Sealed is the key
// ring's box, stored as is. The Lua scripts in scripts.go know this layout.
const (
	recordVersion = 1

	offEnded    = 1
	offExpires  = 5
	offLastSeen = 13
	offCreated  = 21
	offAbsolute = 29
	offIndexed  = 37
	headerSize  = 45 // the fixed part, before len(Subject)
)

// maxFieldLen bounds Subject and SID, whose lengths take two bytes.
const maxFieldLen = math.MaxUint16

// errBadRecord is wrapped by decode's errors: the value under a record key
// is not a record this version reads. It is not ErrNotFound: a record
// written by a newer version during a rolling upgrade must not send its
// user to the login page.
var errBadRecord = errors.New("redisstore: unreadable record")

// notIndexed is the indexed-until time of a record that has no index
// entries: a Touch never needs to extend them.
const notIndexed = math.MaxUint64

// encodeTime returns t's sortable form; the zero time is 0.
func encodeTime(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.UnixNano()) ^ (1 << 63)
}

func decodeTime(v uint64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.Unix(0, int64(v^(1<<63)))
}

// timeInRange reports whether t has a Unix time in nanoseconds (years 1678
// to 2262), or is the zero time.
func timeInRange(t time.Time) bool {
	return t.IsZero() || t.Equal(time.Unix(0, t.UnixNano()))
}

// timeBytes returns t's 8-byte sortable form, as the scripts take it.
func timeBytes(t time.Time) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), encodeTime(t))
}

// checkRecord returns an error for a record that cannot be encoded.
func checkRecord(rec *session.Record) error {
	if len(rec.Subject) > maxFieldLen || len(rec.SID) > maxFieldLen {
		return fmt.Errorf("redisstore: subject or sid longer than %d bytes", maxFieldLen)
	}
	for _, t := range [...]time.Time{rec.Created, rec.LastSeen, rec.AbsoluteExpiry, rec.Expires} {
		if !timeInRange(t) {
			return fmt.Errorf("redisstore: time %v out of range", t)
		}
	}
	return nil
}

// encodeRecord appends rec's encoding to dst. rec must have passed
// checkRecord.
func encodeRecord(dst []byte, rec *session.Record, indexedUntil uint64) []byte {
	dst = append(dst, recordVersion)
	dst = binary.BigEndian.AppendUint32(dst, uint32(rec.Ended))
	dst = binary.BigEndian.AppendUint64(dst, encodeTime(rec.Expires))
	dst = binary.BigEndian.AppendUint64(dst, encodeTime(rec.LastSeen))
	dst = binary.BigEndian.AppendUint64(dst, encodeTime(rec.Created))
	dst = binary.BigEndian.AppendUint64(dst, encodeTime(rec.AbsoluteExpiry))
	dst = binary.BigEndian.AppendUint64(dst, indexedUntil)
	dst = appendIndexed(dst, rec.Subject, rec.SID)
	return append(dst, rec.Sealed...)
}

// appendIndexed appends the length-prefixed Subject and SID: the part of a
// record after the fixed header and before Sealed.
func appendIndexed(dst []byte, subject, sid string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(subject)))
	dst = append(dst, subject...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(sid)))
	return append(dst, sid...)
}

// decoded is a record read back, with what only the store needs.
type decoded struct {
	session.Record
	indexedUntil uint64
}

// decodeRecord decodes v. Subject and SID share v's memory; Sealed is a
// copy.
func decodeRecord(v string) (decoded, error) {
	var d decoded
	if len(v) < headerSize+4 || v[0] != recordVersion {
		return d, errBadRecord
	}
	u64 := func(off int) uint64 {
		var x uint64
		for i := range 8 {
			x = x<<8 | uint64(v[off+i])
		}
		return x
	}
	ended := uint32(v[offEnded])<<24 | uint32(v[offEnded+1])<<16 | uint32(v[offEnded+2])<<8 | uint32(v[offEnded+3])
	d.Ended = session.Reason(int32(ended))
	d.Expires = decodeTime(u64(offExpires))
	d.LastSeen = decodeTime(u64(offLastSeen))
	d.Created = decodeTime(u64(offCreated))
	d.AbsoluteExpiry = decodeTime(u64(offAbsolute))
	d.indexedUntil = u64(offIndexed)
	rest := v[headerSize:]
	var ok bool
	if d.Subject, rest, ok = lengthPrefixed(rest); !ok {
		return d, errBadRecord
	}
	if d.SID, rest, ok = lengthPrefixed(rest); !ok {
		return d, errBadRecord
	}
	if rest != "" {
		d.Sealed = []byte(rest)
	}
	return d, nil
}

func lengthPrefixed(v string) (field, rest string, ok bool) {
	if len(v) < 2 {
		return "", "", false
	}
	n := int(v[0])<<8 | int(v[1])
	if len(v) < 2+n {
		return "", "", false
	}
	return v[2 : 2+n], v[2+n:], true
}
