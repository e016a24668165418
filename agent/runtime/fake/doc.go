// Package fake is an in-memory runtime.Runtime for the pod agent's tests.
//
// Images can be present, pullable or failing; containers "run" until the
// test makes them exit (Exit, OOMKill) or they are stopped; starts can be
// made to fail; a stopped container that ignores SIGTERM waits out its grace
// period on the clock (time.Sleep, so it advances in testing/synctest
// bubbles). Every exit is sent on the Events channels. Calls are recorded
// so tests can assert what the core asked for.
package fake
