//go:build beneath_osroot

package beneath

// Built with -tags beneath_osroot: every Root is an os.Root, so the test suites can run
// the fallback on a kernel that has openat2.
const forceOSRoot = true
