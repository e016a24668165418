// Package store holds the agent's API objects in memory — pods, namespaces,
// the node and its lease, events, configmaps and secrets — the way the API
// server's watch cache does for kubectl: every write gets a resourceVersion
// from one global counter, lists carry the resourceVersion they were taken
// at, and watchers get ADDED, MODIFIED and DELETED events, replayed from a
// bounded history when they resume from a recent resourceVersion.
//
// Objects go in and come out as deep copies, so callers may keep and modify
// what they pass or receive. A slow watcher never blocks a writer: when its
// buffer is full its channel is closed and it must watch again, as a client
// of the API server does when its watch ends.
//
// Recorder writes core/v1 Events the way kubelet's event recorder
// (client-go's tools/record) does, with the same names, sources and
// aggregation of repeated events. Events are kept like the API server keeps
// them: at most an hour (its default --event-ttl) and, because a board has
// little memory, at most MaxEvents of them.
package store
