package main

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// binaries are what a run needs from the repository.
type binaries struct {
	root    string // the repository
	gateway string // .build/custodian
	demo    string // .build/custodian-demo
	floor   string // .build/bench-floor: scripts/bench/floor
	// descriptors is the descriptor set of the buf workspace (public.binpb
	// of examples/routes), "" without --routes.
	descriptors string
}

// build builds the three binaries into root/.build, without the race
// detector, and with routes the descriptor set into dir, all at once.
func build(ctx context.Context, root, dir string, routes bool) (binaries, error) {
	b := binaries{
		root:    root,
		gateway: filepath.Join(root, ".build", "custodian"),
		demo:    filepath.Join(root, ".build", "custodian-demo"),
		floor:   filepath.Join(root, ".build", "bench-floor"),
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return b, fmt.Errorf("go is not on PATH: %w", err)
	}
	goCmd := func(args ...string) error {
		cmd := exec.CommandContext(ctx, goBin, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, 4)
	wg.Go(func() { errs[0] = goCmd("build", "-o", b.gateway, "./cmd/custodian") })
	wg.Go(func() { errs[1] = goCmd("build", "-o", b.demo, "./cmd/custodian-demo") })
	wg.Go(func() { errs[3] = goCmd("build", "-o", b.floor, "./scripts/bench/floor") })
	if routes {
		// As examples/routes/routes_test.go and scripts/routes.sh do: the
		// workspace of buf.yaml holds the public schema and the backends'.
		b.descriptors = filepath.Join(dir, "public.binpb")
		wg.Go(func() { errs[2] = goCmd("tool", "buf", "build", "-o", b.descriptors) })
	}
	wg.Wait()
	return b, errors.Join(errs...)
}
