//go:build !beneath_osroot

package beneath

const forceOSRoot = false
