// Package supervise runs long-lived services the way PID 1 does (gokrazy's
// supervise.go is the model): each service in its own process group, so a
// signal reaches everything it started; a service that exits is started
// again after a backoff (1 s doubling to 30 s, back to 1 s once it ran for
// a minute), except one that exits with code 125, which means "do not
// restart me"; and Stop ends the services in reverse start order with
// SIGTERM to the group, then SIGKILL after the service's stop timeout.
// A service may set MaxFailures: after that many failures in a row the
// supervisor gives up and calls OnGiveUp (PID 1 then reboots the board).
// A command with Setsid (a console shell) runs as its own session leader
// instead of in a new process group.
//
// A service that exits 0 is restarted too: the services of a board
// (containerd, the pod agent) are meant to run until power-off, so any
// exit that Stop did not ask for is a crash.
//
// ReapOrphans is the other half of being PID 1: it waits for the orphans
// the kernel hands to PID 1, and leaves alone the children that their
// starters wait for themselves.
package supervise
