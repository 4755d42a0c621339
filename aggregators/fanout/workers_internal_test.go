package fanout

import (
	"testing"
	"time"
)

// TestSpawnReusesWorkers checks that parts run one after another are
// handed to a kept goroutine, whose stack has grown, rather than each to a
// new one.
func TestSpawnReusesWorkers(t *testing.T) {
	t.Parallel()
	seen := map[string]int{}
	for range 50 {
		ran := make(chan string)
		spawn(func() { ran <- goroutineID() })
		seen[<-ran]++
		// Let the worker get back to waiting for the next part.
		time.Sleep(time.Millisecond)
	}
	reused := 0
	for _, n := range seen {
		reused += n - 1
	}
	if reused < 25 {
		t.Errorf("50 parts ran on %d goroutines, reusing one only %d times", len(seen), reused)
	}
}
