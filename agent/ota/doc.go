// Package ota takes signed over-the-air manifest updates: a bundle pushed
// through the API or polled from an OCI registry is verified
// (agent/ota/bundle), staged and switched to through the durable state
// machine (agent/ota/trial), and its pods (the Target) are judged by the
// health gate: every pod Ready or Succeeded within the health deadline and
// no restart for stableFor commits the generation; anything else rolls it
// back to the committed one, which is then never retried. docs/ota.md has
// the format, the state machine and the threat model.
package ota
