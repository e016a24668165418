// Package volumes sets up a pod's volumes on the node and computes the
// bind mounts of its containers, as kubelet's volume manager and makeMounts
// do for the two kinds a board needs first:
//
//   - emptyDir: a directory per volume at kubelet's layout,
//     <podDir>/volumes/kubernetes.io~empty-dir/<volume>, mode 0777
//     (pkg/volume/emptydir/empty_dir.go); medium Memory mounts a tmpfs
//     there, sized as calculateEmptyDirMemorySize does. It lives as long as
//     the pod: Remove unmounts and deletes it.
//   - hostPath: the node's path after kubelet's type check
//     (pkg/volume/hostpath/host_path.go); never removed.
//
// sizeLimit of a disk-backed emptyDir is not enforced here: kubelet's
// eviction manager does that by evicting the pod, and podboot's does not
// watch volumes yet. Other volume kinds (configMap, secret, projected,
// downwardAPI, ...) fail SetUp, so a pod that needs them shows FailedMount
// rather than running without its files.
package volumes
