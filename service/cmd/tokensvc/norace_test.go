//go:build !race

package main

// raceEnabled reports that this test binary, and so every replica it runs, is built with the
// race detector, which multiplies a process's memory.
const raceEnabled = false
