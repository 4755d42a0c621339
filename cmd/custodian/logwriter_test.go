package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedWriter records writes, each as one string, safely across goroutines.
type lockedWriter struct {
	mu     sync.Mutex
	writes []string
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func (w *lockedWriter) snapshot() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.writes...)
}

// TestBufferedLog: many lines reach the writer in few writes, in order,
// within the flush interval, and Close writes the rest.
func TestBufferedLog(t *testing.T) {
	t.Parallel()
	out := &lockedWriter{}
	b := newBufferedLog(out)
	var want bytes.Buffer
	for i := range 100 {
		line := strings.Repeat("x", i) + "\n"
		want.WriteString(line)
		if _, err := b.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Join(out.snapshot(), "") != want.String() {
		if time.Now().After(deadline) {
			t.Fatalf("after 5s the writer has %d bytes, want %d", len(strings.Join(out.snapshot(), "")), want.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(out.snapshot()); n > 3 {
		t.Errorf("100 lines took %d writes, want them gathered", n)
	}
	if _, err := b.Write([]byte("last\n")); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.snapshot(); got[len(got)-1] != "last\n" {
		t.Errorf("after Close the last write is %q, want the last line", got[len(got)-1])
	}
}
