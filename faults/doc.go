// Package faults proves, for every failure the suite can provoke, the one
// property an administrator chooses an MDA for: exit 0 means the
// message is on disk whole, and anything else means the mailbox is exactly as
// it was — never a fragment, never a lost or duplicated message.
//
// The package has no code of its own, only tests. They drive the real
// vdeliver binary as a subprocess, built twice by TestMain: a normal build,
// and one with -tags faultinject whose kill points and seams
// (maildir/killpoint_faultinject.go, mbox/killpoint_faultinject.go) are armed
// by the environment variables VDELIVER_KILL_AT and VDELIVER_FAULT. As root
// (CI) every delivery drops to uid/gid 5000 with a base owned by 5000, as
// testdata/script does.
//
// # The matrix (each row for Maildir and for mbox)
//
//	kill        SIGKILL at every kill point, in a new and in an existing
//	            mailbox; then a follow-up delivery must succeed within the
//	            stale-lock rules (stale_lock_time=1s)
//	kill-torn   SIGKILL in the middle of the mbox write(2), with each lock
//	            kind, and in the recovery that follows: the next delivery
//	            must cut the fragment off through the intent record
//	            (mbox/doc.go, "Torn writes"), leaving the old bytes and its
//	            own record (TestKillRecovery checks this byte for byte)
//	kill-random SIGKILL at a random moment of a delivery of a large message
//	disk-full   a real tmpfs (root only), message sizes across the free space
//	eio         EIO on write, fsync and close through the seams
//	link        link(2) refused, lying, or the name taken: never overwrites
//	concurrent  8 processes × N messages, Python's mailbox module reading
//	stdin       ends early, unreadable, empty, 0-length, 60 MB, NUL bytes,
//	            1 MB lines, bare CR, CRLF
//
// After every run the mailbox is read back byte for byte: each message
// carries X-Fault-Id and an X-Fault-Sum of its body; a stored message that is
// not exactly what vdeliver was given counts as partial, a missing one as
// lost, a second copy as duplicated, and an exit code or status line other
// than docs/behaviour.md §7 gives as wrong status. Right after a kill, an mbox
// fragment is not counted when the intent record left beside the mailbox proves
// that the next delivery will cut it off (the harness reads that record
// itself); the check after the next delivery is strict, and a record still
// there counts as partial. TestMain prints the table (fault, format,
// runs, lost, duplicated, partial, wrong status); every count except runs must
// be zero, and any non-zero count also fails the test that produced it.
//
// # Running
//
//	go test ./faults                      the short matrix, as CI runs it
//	VDELIVER_FAULTS=full go test ./faults the full matrix (make faults)
//
// The short matrix runs every kill point and every fault once; full mode adds
// repetitions, more random kills, more disk-full sizes and 8 × 200 concurrent
// messages. Without root the tmpfs rows skip, and the others deliver as the
// invoking user. When CI=true a missing python3 fails instead of skipping.
package faults
