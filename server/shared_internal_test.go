package server

import (
	"bytes"
	"context"
	"io"
	"runtime"
	"testing"
	"time"

	"connectrpc.com/connect/v2"
	"connectrpc.com/connect/v2/connectproto"
	"google.golang.org/protobuf/types/known/structpb"
)

// countingCodec counts the messages its codec encodes.
type countingCodec struct {
	connect.StableCodec
	n int
}

func (c *countingCodec) MarshalWrite(ctx context.Context, dst io.Writer, msg any) error {
	c.n++
	return c.StableCodec.MarshalWrite(ctx, dst, msg)
}

func TestSharedCodec(t *testing.T) {
	t.Parallel()
	// A list, not a struct: map order would make two encodings differ.
	newMsg := func(s string) *structpb.ListValue {
		m, err := structpb.NewList([]any{s, 3, true})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	cases := []struct {
		name      string
		share     bool
		calls     int
		wantCodec int // encodings done by the wrapped codec
	}{
		{name: "shared: encoded once", share: true, calls: 5, wantCodec: 1},
		{name: "not shared: encoded every time", calls: 5, wantCodec: 5},
	}
	for _, tc := range cases {
		for _, inner := range []connect.StableCodec{connectproto.NewBinaryCodec(), connectproto.NewJSONCodec()} {
			t.Run(tc.name+"/"+inner.Name(), func(t *testing.T) {
				t.Parallel()
				counting := &countingCodec{StableCodec: inner}
				c := sharedCodec{counting}
				msg := newMsg(tc.name)
				if tc.share {
					Share(msg)
				}
				var want bytes.Buffer
				if err := inner.MarshalWrite(t.Context(), &want, msg); err != nil {
					t.Fatal(err)
				}
				for i := range tc.calls {
					var got bytes.Buffer
					if err := c.MarshalWrite(t.Context(), &got, msg); err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got.Bytes(), want.Bytes()) {
						t.Fatalf("call %d wrote %q, want %q", i, got.Bytes(), want.Bytes())
					}
				}
				if counting.n != tc.wantCodec {
					t.Errorf("the codec encoded %d times, want %d", counting.n, tc.wantCodec)
				}
				// An equal message that was not shared is encoded anew.
				other := newMsg(tc.name)
				if sharedEntryOf(other) != nil {
					t.Error("a message that was not shared has an entry")
				}
				runtime.KeepAlive(msg)
			})
		}
	}
}

// TestSharedEntryDroppedWithMessage checks that the kept encodings go once
// the shared message is garbage collected.
func TestSharedEntryDroppedWithMessage(t *testing.T) {
	msg, err := structpb.NewList([]any{"drop"})
	if err != nil {
		t.Fatal(err)
	}
	Share(msg)
	if err := (sharedCodec{connectproto.NewBinaryCodec()}).MarshalWrite(t.Context(), io.Discard, msg); err != nil {
		t.Fatal(err)
	}
	if sharedEntryOf(msg) == nil {
		t.Fatal("no entry for a shared message")
	}
	key := entryKey(msg)
	msg = nil //nolint:ineffassign,wastedassign // drops the only reference
	deadline := time.Now().Add(10 * time.Second)
	for {
		runtime.GC()
		if _, ok := sharedAnswers.Load(key); !ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry of a collected message is still kept")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
