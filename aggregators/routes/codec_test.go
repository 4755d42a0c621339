package routes

import (
	"bytes"
	"context"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/dynamicpb"
)

// TestBackendCodec checks that BackendCodec hands a rawAnswer the bytes as
// they come, reusing its buffer, and decodes any other message as
// connect-go's binary codec does.
func TestBackendCodec(t *testing.T) {
	t.Parallel()
	codec := BackendCodec()
	if codec.Name() != "proto" {
		t.Fatalf("codec name %q, want proto", codec.Name())
	}
	ctx := context.Background()
	answer := canaryBytes(t, nil)
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "answer", b: answer},
		{name: "empty answer", b: nil},
	}
	raw := &rawAnswer{b: make([]byte, 0, 2*len(answer))}
	for _, tt := range tests { // sequential: they share raw's buffer
		t.Run(tt.name, func(t *testing.T) {
			before := cap(raw.b)
			if err := codec.UnmarshalRead(ctx, bytes.NewReader(tt.b), raw); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw.b, tt.b) {
				t.Errorf("rawAnswer holds %q, want %q", raw.b, tt.b)
			}
			if cap(raw.b) != before {
				t.Errorf("rawAnswer's buffer was not reused: capacity %d, was %d", cap(raw.b), before)
			}
		})
	}
	t.Run("other messages", func(t *testing.T) {
		msg := dynamicpb.NewMessage(backendResponse)
		if err := codec.UnmarshalRead(ctx, bytes.NewReader(answer), msg); err != nil {
			t.Fatal(err)
		}
		if want := decodeDynamic(t, backendResponse, answer); !proto.Equal(msg, want) {
			t.Errorf("decoded %v, want %v", msg, want)
		}
		var out bytes.Buffer
		if err := codec.MarshalWrite(ctx, &out, msg); err != nil {
			t.Fatal(err)
		}
		if again := decodeDynamic(t, backendResponse, out.Bytes()); !proto.Equal(again, msg) {
			t.Errorf("re-encoded message decodes as %v, want %v", again, msg)
		}
	})
}
