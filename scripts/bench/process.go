package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// stopTimeout is how long a child gets to exit after SIGTERM before it is
// killed.
const stopTimeout = 10 * time.Second

// process is a child process whose output goes to files. It dies with the
// harness even if the harness is killed outright (Pdeathsig), so a run never
// leaves a gateway or a demo world behind.
type process struct {
	name string
	log  string // stderr, and stdout unless start was given a file for it
	cmd  *exec.Cmd
	done chan struct{} // closed once it has exited
}

// startProcess starts bin with args and env (nil: the harness's own
// environment); its stderr goes to log, its stdout to stdout ("" for log
// too).
func startProcess(name, bin string, args, env []string, log, stdout string) (*process, error) {
	logFile, err := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	outFile := logFile
	if stdout != "" {
		if outFile, err = os.OpenFile(stdout, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err != nil {
			logFile.Close()
			return nil, fmt.Errorf("%s: stdout: %w", name, err)
		}
	}
	closeFiles := func() {
		logFile.Close()
		if outFile != logFile {
			outFile.Close()
		}
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = outFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		closeFiles()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, log: log, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait() // how it ended is in its log
		closeFiles()
		close(p.done)
	}()
	return p, nil
}

// pid returns its process id, for /proc.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exited reports whether it has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends it: SIGTERM, then SIGKILL after stopTimeout. Calling it again
// is harmless.
func (p *process) stop() {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM) // fails only if it is gone already
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the last n bytes of its log, for error messages.
func (p *process) tail(n int64) string {
	f, err := os.Open(p.log)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
