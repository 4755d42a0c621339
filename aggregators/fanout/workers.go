package fanout

import "time"

// workerIdle is how long a worker waits for another part before it ends.
const workerIdle = 10 * time.Second

// workers hands parts to goroutines kept from earlier parts. A part's call
// chain (client, HTTP transport, encoding) needs a stack of tens of KB; a
// fresh goroutine starts with a few and grows by copying, which cost about
// 8 % of the CPU of a three-backend call. A kept goroutine has already
// grown (until the garbage collector shrinks an idle one).
var workers = make(chan func())

// spawn runs task on an idle worker, or on a new goroutine that then stays
// a worker until it has been idle for workerIdle.
func spawn(task func()) {
	select {
	case workers <- task:
	default:
		go work(task)
	}
}

func work(task func()) {
	task()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case task = <-workers:
			task()
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		}
	}
}
