//go:build !faultinject

package mbox

// killpoint marks a step boundary of a delivery. In the fault-injection build
// (tag faultinject, killpoint_faultinject.go) it can SIGKILL the process there,
// so that the faults/ suite can prove what a crash at that step leaves behind;
// in every other build it does nothing and costs nothing.
func killpoint(string) {}
