package cdb

import "errors"

// ErrFormat reports a file that is not a well-formed cdb: too short, too
// long, or holding an offset or length that points outside where it must.
var ErrFormat = errors.New("cdb: malformed file")

const (
	headerSize = 2048
	// maxFileSize is the largest file whose every offset fits in 32 bits.
	maxFileSize = 1<<32 - 1
)

// hash is djb's cdb hash: h = ((h << 5) + h) ^ c, starting from 5381.
func hash(key []byte) uint32 {
	h := uint32(5381)
	for _, c := range key {
		h = (h<<5 + h) ^ uint32(c)
	}
	return h
}
