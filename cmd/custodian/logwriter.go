package main

import (
	"bufio"
	"io"
	"sync"
	"time"
)

// logFlushInterval is how long a log line may wait in the buffer.
const logFlushInterval = 100 * time.Millisecond

// logBufferSize is the buffer of log lines; a fuller one is written at once.
const logBufferSize = 64 << 10

// bufferedLog collects log lines and writes them to w every
// logFlushInterval, or at once when logBufferSize fills, instead of one write
// per line: under load the access log writes a line per call, and a write
// system call per line cost the gateway about a seventh of its CPU time per
// call in the bench harness. A crash loses at most the last interval's lines;
// Close writes what is left.
type bufferedLog struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newBufferedLog(w io.Writer) *bufferedLog {
	b := &bufferedLog{buf: bufio.NewWriterSize(w, logBufferSize), stop: make(chan struct{}), done: make(chan struct{})}
	go b.flushEvery(logFlushInterval)
	return b
}

func (b *bufferedLog) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *bufferedLog) flushEvery(d time.Duration) {
	defer close(b.done)
	ticker := time.NewTicker(d)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			b.flush()
		case <-b.stop:
			return
		}
	}
}

func (b *bufferedLog) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Flush()
}

// Close stops the flushing and writes what is left.
func (b *bufferedLog) Close() error {
	close(b.stop)
	<-b.done
	return b.flush()
}
