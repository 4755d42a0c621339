package server

import (
	"bytes"
	"context"
	"io"
	"reflect"
	"runtime"
	"sync"
	"sync/atomic"
	"weak"

	"connectrpc.com/connect/v2"
	"google.golang.org/protobuf/proto"
)

// Share marks m as an answer that is the same for every caller and is not
// modified again, so that the handler codecs keep its binary and JSON
// encodings and write those bytes to later callers instead of encoding it
// anew. A shared product list, for one, costs its encoding once per cache
// entry instead of once per call. The encodings are dropped when m is
// garbage collected: share a message a cache holds, and its bytes live as
// long as the cache entry. Share returns m.
func Share[T any, M interface {
	*T
	proto.Message
}](m M) M {
	if m == nil {
		return m
	}
	key := entryKey(m)
	wp := weak.Make((*T)(m))
	e := &sharedEntry{is: func(msg any) bool {
		p, ok := msg.(M)
		return ok && wp.Value() == (*T)(p)
	}}
	if _, loaded := sharedAnswers.LoadOrStore(key, e); loaded {
		return m
	}
	sharedCount.Add(1)
	runtime.AddCleanup((*T)(m), func(key uintptr) {
		if sharedAnswers.CompareAndDelete(key, e) {
			sharedCount.Add(-1)
		}
	}, key)
	return m
}

// sharedAnswers maps the address of each shared message to its entry. The
// address alone does not keep the message alive; the entry's weak pointer
// tells a reused address from the message itself.
var (
	sharedAnswers sync.Map // uintptr -> *sharedEntry
	sharedCount   atomic.Int64
)

// sharedEntry holds the encodings of one shared message, by codec name.
type sharedEntry struct {
	is        func(msg any) bool // msg is the shared message, not a reuse of its address
	encodings sync.Map           // codec name -> []byte
}

// sharedEntryOf returns the entry of msg if msg was shared.
func sharedEntryOf(msg any) *sharedEntry {
	if sharedCount.Load() == 0 || msg == nil {
		return nil
	}
	if reflect.TypeOf(msg).Kind() != reflect.Pointer {
		return nil
	}
	e, ok := sharedAnswers.Load(entryKey(msg))
	if !ok || !e.(*sharedEntry).is(msg) {
		return nil
	}
	return e.(*sharedEntry)
}

// entryKey is the address msg, a pointer, points to.
func entryKey(msg any) uintptr {
	return uintptr(reflect.ValueOf(msg).UnsafePointer())
}

// sharedCodec writes the kept encoding of a shared message, encoding it
// with the codec it wraps the first time.
type sharedCodec struct{ connect.StableCodec }

func (c sharedCodec) MarshalWrite(ctx context.Context, dst io.Writer, msg any) error {
	e := sharedEntryOf(msg)
	if e == nil {
		return c.StableCodec.MarshalWrite(ctx, dst, msg)
	}
	if b, ok := e.encodings.Load(c.Name()); ok {
		_, err := dst.Write(b.([]byte))
		return err
	}
	var buf bytes.Buffer
	if err := c.StableCodec.MarshalWrite(ctx, &buf, msg); err != nil {
		return err
	}
	e.encodings.Store(c.Name(), buf.Bytes())
	_, err := dst.Write(buf.Bytes())
	return err
}
