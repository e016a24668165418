package manifest

// fileHint is what the kernel said about a file of the manifest directory:
// complete (closed after writing, or renamed into the directory, so its
// content is whole) or being written in place. A hint with no name means
// events may have been lost: no file is known to be complete.
type fileHint struct {
	name     string
	complete bool
}
