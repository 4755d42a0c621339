//go:build race

package replicas_test

// raceEnabled is whether the test runs under the race detector; the
// gateway it starts is then built with it too.
const raceEnabled = true
