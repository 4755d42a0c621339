package fanout

import (
	"bytes"
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// goroutineID returns the id of the calling goroutine, from its stack
// header ("goroutine 42 [running]:").
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf, _, _ = bytes.Cut(bytes.TrimPrefix(buf, []byte("goroutine ")), []byte(" "))
	return string(buf)
}

// TestPartsRunOnFewGoroutines checks where parts run: the part started last
// on the goroutine that waits, a Then part on the goroutine of the part it
// follows, every other part on a goroutine of its own.
func TestPartsRunOnFewGoroutines(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		parts int // started with Go, each followed by one Then
		// wantOnCaller is how many parts (Go and Then) run on the
		// goroutine that calls Wait.
		wantOnCaller int
		// wantGoroutines is how many goroutines run parts in all.
		wantGoroutines int
	}{
		{name: "one part and its then", parts: 1, wantOnCaller: 2, wantGoroutines: 1},
		{name: "three parts and their thens", parts: 3, wantOnCaller: 2, wantGoroutines: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			caller := goroutineID()
			var mu sync.Mutex
			var ran []string // goroutine of each part, Go then its Then
			record := func() {
				mu.Lock()
				defer mu.Unlock()
				ran = append(ran, goroutineID())
			}
			g := New[int](testContext(t))
			for i := range tc.parts {
				r := Go(g, Part[int]{Label: i}, func(context.Context) (int, error) { record(); return i, nil })
				Then(g, r, Part[int]{Label: i}, func(context.Context, int) (int, error) { record(); return i, nil })
			}
			if err := g.Wait(); err != nil {
				t.Fatalf("Wait() = %v", err)
			}
			if len(ran) != 2*tc.parts {
				t.Fatalf("%d parts ran, want %d", len(ran), 2*tc.parts)
			}
			onCaller := 0
			for _, id := range ran {
				if id == caller {
					onCaller++
				}
			}
			slices.Sort(ran)
			if onCaller != tc.wantOnCaller || len(slices.Compact(ran)) != tc.wantGoroutines {
				t.Errorf("%d parts on the caller's goroutine, %d goroutines in all; want %d and %d",
					onCaller, len(slices.Compact(ran)), tc.wantOnCaller, tc.wantGoroutines)
			}
		})
	}
}

// TestThenAfterFinishedPart starts a Then part after the part it follows
// has finished (read with Value before Wait), and several Then parts of one
// part: each runs once, with the value, and Wait waits for all.
func TestThenAfterFinishedPart(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		valueFirst  bool // read the first part's Value before starting the Then parts
		thens       int
		afterFails  bool
		wantMissing []int
	}{
		{name: "then of a finished part", valueFirst: true, thens: 1},
		{name: "thens of a finished part", valueFirst: true, thens: 3},
		{name: "thens of a running part", thens: 3},
		{name: "thens of a failed finished part", valueFirst: true, thens: 2, afterFails: true, wantMissing: []int{0, 1, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := New[int](testContext(t))
			first := Go(g, Part[int]{Label: 0}, func(context.Context) (int, error) {
				if tc.afterFails {
					return 0, errBoom
				}
				return 5, nil
			})
			if tc.valueFirst {
				if v, ok := first.Value(); ok == tc.afterFails || (ok && v != 5) {
					t.Fatalf("Value() before Wait = %d, %v", v, ok)
				}
			}
			var calls sync.WaitGroup // Done per call; a second call of one part panics the counter
			calls.Add(tc.thens)
			if tc.afterFails {
				calls.Add(-tc.thens)
			}
			results := make([]*Result[int], tc.thens)
			for i := range tc.thens {
				results[i] = Then(g, first, Part[int]{Label: i + 1}, func(_ context.Context, v int) (int, error) {
					calls.Done()
					return v * (i + 1), nil
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatalf("Wait() = %v", err)
			}
			calls.Wait()
			for i, r := range results {
				v, ok := r.Value()
				if tc.afterFails {
					if ok {
						t.Errorf("then %d: Value() = %d, true after a failed part", i, v)
					}
					continue
				}
				if !ok || v != 5*(i+1) {
					t.Errorf("then %d: Value() = %d, %v; want %d, true", i, v, ok, 5*(i+1))
				}
			}
			if m := g.Missing(); !slices.Equal(m, tc.wantMissing) {
				t.Errorf("Missing() = %v, want %v", m, tc.wantMissing)
			}
		})
	}
}
