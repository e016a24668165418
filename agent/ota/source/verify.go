package source

import (
	"errors"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
)

// verifiedReader reads exactly desc.Size bytes of r and, at their end,
// checks them against desc.Digest: a reader of it gets io.EOF only for
// the content desc names. It guards what is read back from the flash or a
// USB stick, which can rot or be swapped after it was checked; onBad runs
// once when the check fails (the cache drops the file then).
type verifiedReader struct {
	desc  ocispec.Descriptor
	what  string // "cached blob" or "blob on the layout", for errors
	rc    io.ReadCloser
	vr    *content.VerifyReader
	onBad func()
	err   error
}

func newVerifiedReader(rc io.ReadCloser, desc ocispec.Descriptor, what string, onBad func()) *verifiedReader {
	return &verifiedReader{desc: desc, what: what, rc: rc, vr: content.NewVerifyReader(rc, desc), onBad: onBad}
}

func (v *verifiedReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.vr.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		if verr := v.vr.Verify(); verr != nil {
			err = v.fail(verr)
		}
	case err != nil:
		err = v.fail(err)
	}
	v.err = err
	return n, err
}

func (v *verifiedReader) fail(err error) error {
	bad := errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) || errors.Is(err, io.ErrUnexpectedEOF)
	if bad && v.onBad != nil { // not on an I/O error: the bytes may be fine
		v.onBad()
		v.onBad = nil
	}
	return fmt.Errorf("read %s %s (%d bytes): %w", v.what, v.desc.Digest, v.desc.Size, err)
}

func (v *verifiedReader) Close() error { return v.rc.Close() }
