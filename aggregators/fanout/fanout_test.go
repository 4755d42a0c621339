package fanout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	errBoom = errors.New("backend failed")
	// errTestDeadline is the cause of the test context's end: a part that
	// sees it was never cancelled by the code under test.
	errTestDeadline = errors.New("test deadline reached: the code under test never let go")
)

// testContext bounds a test so that a broken implementation fails clearly
// instead of hanging; no test waits for this deadline when the code works.
func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeoutCause(t.Context(), 10*time.Second, errTestDeadline)
	t.Cleanup(cancel)
	return ctx
}

type behaviour int

const (
	succeed behaviour = iota
	fail
	block // until the part's ctx ends
	panics
)

type partSpec struct {
	label    string
	required bool
	timeout  time.Duration
	does     behaviour
}

func TestGroupOutcomes(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		parts       []partSpec
		wantErr     string // label of the required part Wait reports; "" = nil
		wantErrIs   error
		wantMissing []string
		wantOK      []string
	}{
		{
			name:   "all succeed",
			parts:  []partSpec{{label: "orders", required: true}, {label: "recs"}, {label: "profile"}},
			wantOK: []string{"orders", "recs", "profile"},
		},
		{
			name:        "optional failure is listed missing",
			parts:       []partSpec{{label: "orders", required: true}, {label: "recs", does: fail}, {label: "profile"}},
			wantMissing: []string{"recs"},
			wantOK:      []string{"orders", "profile"},
		},
		{
			name: "required failure fails the call and cancels the others",
			parts: []partSpec{
				{label: "recs", does: block},
				{label: "profile", required: true, does: block},
				{label: "orders", required: true, does: fail},
				{label: "reviews", does: block},
			},
			wantErr:   "orders",
			wantErrIs: errBoom,
		},
		{
			name: "optional part past its timeout is missing",
			parts: []partSpec{
				{label: "orders", required: true},
				{label: "recs", timeout: time.Millisecond, does: block},
				{label: "profile"},
			},
			wantMissing: []string{"recs"},
			wantOK:      []string{"orders", "profile"},
		},
		{
			name:      "required part past its timeout fails the call",
			parts:     []partSpec{{label: "orders", required: true, timeout: time.Millisecond, does: block}, {label: "recs", does: block}},
			wantErr:   "orders",
			wantErrIs: context.DeadlineExceeded,
		},
		{
			name:        "panic in an optional part is a missing part",
			parts:       []partSpec{{label: "orders", required: true}, {label: "recs", does: panics}},
			wantMissing: []string{"recs"},
			wantOK:      []string{"orders"},
		},
		{
			name:      "panic in a required part fails the call",
			parts:     []partSpec{{label: "recs", does: block}, {label: "orders", required: true, does: panics}},
			wantErr:   "orders",
			wantErrIs: errPanicked,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := New[string](testContext(t))
			causes := make([]error, len(tc.parts)) // each written by one part only, read after Wait
			results := make([]*Result[int], len(tc.parts))
			for i, s := range tc.parts {
				results[i] = Go(g, Part[string]{Label: s.label, Required: s.required, Timeout: s.timeout}, func(ctx context.Context) (int, error) {
					switch s.does {
					case fail:
						return 0, fmt.Errorf("%s: %w", s.label, errBoom)
					case block:
						<-ctx.Done()
						causes[i] = context.Cause(ctx)
						return 0, ctx.Err()
					case panics:
						panic("secret-panic-value of " + s.label)
					}
					return len(s.label), nil
				})
			}
			err := g.Wait()

			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Wait() = %v, want nil", err)
				}
			} else {
				var pe *PartError[string]
				if !errors.As(err, &pe) {
					t.Fatalf("Wait() = %v (%T), want *PartError", err, err)
				}
				if pe.Label != tc.wantErr {
					t.Errorf("PartError.Label = %q, want %q", pe.Label, tc.wantErr)
				}
				if !errors.Is(err, tc.wantErrIs) {
					t.Errorf("Wait() = %v, want it to wrap %v", err, tc.wantErrIs)
				}
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("Wait() = %q, must not contain the panic value", err)
				}
			}
			if got := g.Missing(); !slices.Equal(got, tc.wantMissing) {
				t.Errorf("Missing() = %q, want %q", got, tc.wantMissing)
			}
			for i, s := range tc.parts {
				v, ok := results[i].Value()
				if want := slices.Contains(tc.wantOK, s.label); ok != want {
					t.Errorf("part %q: ok = %v, want %v", s.label, ok, want)
				}
				if ok && v != len(s.label) {
					t.Errorf("part %q: value = %d, want %d", s.label, v, len(s.label))
				}
				if s.does != block {
					continue
				}
				if errors.Is(causes[i], errTestDeadline) {
					t.Errorf("part %q was never cancelled (fail fast or its timeout)", s.label)
				}
				var pe *PartError[string]
				// nil: the call had already failed when the part started, so fn never ran.
				if causes[i] != nil && s.timeout == 0 && tc.wantErr != "" && !errors.As(causes[i], &pe) {
					t.Errorf("part %q: context.Cause = %v, want the *PartError that failed the call", s.label, causes[i])
				}
			}
		})
	}
}

// TestGroupRunsPartsConcurrently needs every part running at once: each
// blocks until all have started, so a sequential Group cannot finish.
func TestGroupRunsPartsConcurrently(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		required []bool
	}{
		{name: "required parts", required: []bool{true, true, true}},
		{name: "optional parts", required: []bool{false, false, false}},
		{name: "mixed parts", required: []bool{true, false, true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			var started sync.WaitGroup
			started.Add(len(tc.required))
			allStarted := make(chan struct{})
			go func() { started.Wait(); close(allStarted) }()

			g := New[int](ctx)
			results := make([]*Result[int], len(tc.required))
			for i, req := range tc.required {
				results[i] = Go(g, Part[int]{Label: i, Required: req}, func(ctx context.Context) (int, error) {
					started.Done()
					select {
					case <-allStarted:
						return i * 10, nil
					case <-ctx.Done():
						return 0, context.Cause(ctx)
					}
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatalf("Wait() = %v: the parts did not run concurrently", err)
			}
			if m := g.Missing(); len(m) != 0 {
				t.Fatalf("Missing() = %v: the parts did not run concurrently", m)
			}
			for i, r := range results {
				if v, ok := r.Value(); !ok || v != i*10 {
					t.Errorf("part %d: Value() = %d, %v; want %d, true", i, v, ok, i*10)
				}
			}
		})
	}
}

// TestGroupMissingOrder makes the parts fail in reverse start order; Missing
// must still list them in start order, each label once.
func TestGroupMissingOrder(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		labels []string
		want   []string
	}{
		{name: "distinct labels", labels: []string{"a", "b", "c"}, want: []string{"a", "b", "c"}},
		{name: "repeated labels", labels: []string{"b", "a", "b", "c", "a"}, want: []string{"b", "a", "c"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := New[string](testContext(t))
			results := make([]*Result[int], len(tc.labels))
			ready := make(chan struct{})
			for i, l := range tc.labels {
				results[i] = Go(g, Part[string]{Label: l}, func(ctx context.Context) (int, error) {
					select {
					case <-ready:
					case <-ctx.Done(): // only if Go ran fn before returning
						return 0, context.Cause(ctx)
					}
					if i+1 < len(results) {
						results[i+1].Value() // finish after the part started next
					}
					return 0, errBoom
				})
			}
			close(ready)
			Go(g, Part[string]{Label: "ok"}, func(context.Context) (int, error) { return 1, nil })
			if err := g.Wait(); err != nil {
				t.Fatalf("Wait() = %v, want nil: only optional parts failed", err)
			}
			if got := g.Missing(); !slices.Equal(got, tc.want) {
				t.Errorf("Missing() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestGroupCallContextAlreadyCancelled(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		required    []bool
		wantErr     bool
		wantMissing []string
	}{
		{name: "only optional parts", required: []bool{false, false}, wantMissing: []string{"p0", "p1", "then"}},
		{name: "with a required part", required: []bool{true, false}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(testContext(t))
			cancel()
			g := New[string](ctx)
			var mu sync.Mutex
			called := 0
			var results []*Result[int]
			for i, req := range tc.required {
				r := Go(g, Part[string]{Label: fmt.Sprint("p", i), Required: req}, func(ctx context.Context) (int, error) {
					mu.Lock()
					called++
					mu.Unlock()
					<-ctx.Done()
					return 0, ctx.Err()
				})
				results = append(results, r)
			}
			then := Then(g, results[0], Part[string]{Label: "then"}, func(context.Context, int) (int, error) {
				mu.Lock()
				called++
				mu.Unlock()
				return 1, nil
			})
			results = append(results, then)
			err := g.Wait()
			if tc.wantErr {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Wait() = %v, want context.Canceled", err)
				}
			} else {
				if err != nil {
					t.Errorf("Wait() = %v, want nil: only optional parts", err)
				}
				if got := g.Missing(); !slices.Equal(got, tc.wantMissing) {
					t.Errorf("Missing() = %q, want %q", got, tc.wantMissing)
				}
			}
			for i, r := range results {
				if _, ok := r.Value(); ok {
					t.Errorf("part %d succeeded on a cancelled call", i)
				}
			}
			if called != 0 {
				t.Errorf("%d fns were called on a cancelled call, want none (fail fast)", called)
			}
		})
	}
}

func TestThen(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name          string
		afterRequired bool
		afterFails    bool
		thenRequired  bool
		thenFails     bool
		wantCalled    bool
		wantErr       string
		wantErrIs     error
		wantMissing   []string
		wantOK        bool
	}{
		{name: "runs with the value", wantCalled: true, wantOK: true},
		{name: "required after, required then", afterRequired: true, thenRequired: true, wantCalled: true, wantOK: true},
		{name: "own failure of an optional then is missing", thenFails: true, wantCalled: true, wantMissing: []string{"catalog"}},
		{name: "own failure of a required then fails the call", thenRequired: true, thenFails: true, wantCalled: true, wantErr: "catalog", wantErrIs: errBoom},
		{name: "optional then of a failed optional part is skipped and missing", afterFails: true, wantMissing: []string{"orders", "catalog"}},
		{name: "required then of a failed optional part fails the call", afterFails: true, thenRequired: true, wantErr: "catalog", wantErrIs: errBoom, wantMissing: []string{"orders"}},
		{name: "optional then of a failed required part is not missing", afterRequired: true, afterFails: true, wantErr: "orders", wantErrIs: errBoom},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := New[string](testContext(t))
			orders := Go(g, Part[string]{Label: "orders", Required: tc.afterRequired}, func(context.Context) ([]string, error) {
				if tc.afterFails {
					return nil, errBoom
				}
				return []string{"p1", "p2"}, nil
			})
			called := false // written by the Then part only, read after Wait
			var got []string
			catalog := Then(g, orders, Part[string]{Label: "catalog", Required: tc.thenRequired}, func(_ context.Context, ids []string) (int, error) {
				called, got = true, ids
				if tc.thenFails {
					return 0, errBoom
				}
				return len(ids), nil
			})
			err := g.Wait()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Wait() = %v, want nil", err)
				}
			} else {
				var pe *PartError[string]
				if !errors.As(err, &pe) || pe.Label != tc.wantErr || !errors.Is(err, tc.wantErrIs) {
					t.Fatalf("Wait() = %v, want *PartError %q wrapping %v", err, tc.wantErr, tc.wantErrIs)
				}
			}
			if called != tc.wantCalled {
				t.Errorf("fn called = %v, want %v", called, tc.wantCalled)
			}
			if called && !slices.Equal(got, []string{"p1", "p2"}) {
				t.Errorf("fn got %q, want after's value", got)
			}
			if m := g.Missing(); !slices.Equal(m, tc.wantMissing) {
				t.Errorf("Missing() = %q, want %q", m, tc.wantMissing)
			}
			v, ok := catalog.Value()
			if ok != tc.wantOK || (ok && v != 2) {
				t.Errorf("Value() = %d, %v; want 2, %v", v, ok, tc.wantOK)
			}
		})
	}
}

// TestValueBeforeWait reads a Result while its part still runs: Value must
// block until the part is done (the race detector checks the handover).
func TestValueBeforeWait(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		fails    bool
		wantVal  int
		wantOK   bool
		required bool
	}{
		{name: "success", wantVal: 42, wantOK: true},
		{name: "optional failure", fails: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			g := New[string](ctx)
			release := make(chan struct{})
			r := Go(g, Part[string]{Label: "slow", Required: tc.required}, func(ctx context.Context) (int, error) {
				select {
				case <-release:
				case <-ctx.Done(): // only if Go ran fn before returning
					return 0, context.Cause(ctx)
				}
				if tc.fails {
					return 7, errBoom
				}
				return 42, nil
			})
			type outcome struct {
				v  int
				ok bool
			}
			got := make(chan outcome, 1)
			go func() { v, ok := r.Value(); got <- outcome{v, ok} }()
			select {
			case o := <-got:
				t.Fatalf("Value() returned %+v while the part was still running", o)
			default:
			}
			close(release)
			select {
			case o := <-got:
				if o.v != tc.wantVal || o.ok != tc.wantOK {
					t.Errorf("Value() = %d, %v; want %d, %v", o.v, o.ok, tc.wantVal, tc.wantOK)
				}
			case <-ctx.Done():
				t.Fatal("Value() never returned after the part finished")
			}
			if err := g.Wait(); err != nil {
				t.Errorf("Wait() = %v", err)
			}
		})
	}
}

// TestPartContextsEndByWait checks that nothing a part was given (its
// timer, the group's context) is left running once Wait returns.
func TestPartContextsEndByWait(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		timeout time.Duration
	}{
		{name: "no part timeout"},
		{name: "with a part timeout", timeout: time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			g := New[string](t.Context()) // no deadline of its own, so a part's deadline is its timeout
			var partCtx context.Context
			Go(g, Part[string]{Label: "p", Timeout: tc.timeout}, func(ctx context.Context) (int, error) {
				partCtx = ctx
				return 1, nil
			})
			if err := g.Wait(); err != nil {
				t.Fatalf("Wait() = %v", err)
			}
			if partCtx.Err() == nil {
				t.Error("the part's context is still live after Wait")
			}
			_, hasDeadline := partCtx.Deadline()
			if want := tc.timeout > 0; hasDeadline != want {
				t.Errorf("part ctx has deadline = %v, want %v", hasDeadline, want)
			}
		})
	}
}

func TestPartErrorMessage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  *PartError[string]
		want string
	}{
		{name: "wrapped error", err: &PartError[string]{Label: "orders", Err: errBoom}, want: "fanout: part orders failed: backend failed"},
		{name: "panic", err: &PartError[string]{Label: "recs", Err: errPanicked}, want: "fanout: part recs failed: fanout: part panicked"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if !errors.Is(tc.err, tc.err.Err) {
				t.Error("Unwrap does not give the part's error")
			}
		})
	}
}
