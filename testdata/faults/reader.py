"""Reads a Maildir or an mbox over and over while vdeliver delivers into it
(faults/concurrent_test.go), as a mail reader would: Python's mailbox module,
with mailbox locking for the mbox. Every message it sees must be whole: its
body must hash to its X-Fault-Sum, and no X-Fault-Id may appear twice in one
pass. Runs until the file named by argv[3] exists; prints one JSON object.

usage: reader.py maildir|mbox PATH STOPFILE
"""
import hashlib
import json
import mailbox
import os
import sys
import time

kind, path, stop = sys.argv[1], sys.argv[2], sys.argv[3]
passes, seen_max, errors = 0, 0, []


def check(data):
    head, sep, body = data.partition(b"\n\n")
    fid = fsum = None
    for line in head.split(b"\n"):
        if line.startswith(b"X-Fault-Id: "):
            fid = line[12:].decode()
        elif line.startswith(b"X-Fault-Sum: "):
            fsum = line[13:].decode()
    if fid is None or fsum is None or not sep:
        return None, "message without fault headers: %r" % data[:80]
    if hashlib.sha256(body).hexdigest() != fsum:
        return fid, "message %s is not whole (%d bytes)" % (fid, len(data))
    return fid, None


def one_pass():
    if kind == "maildir":
        if not os.path.isdir(os.path.join(path, "new")):
            return []
        box = mailbox.Maildir(path, factory=None, create=False)
        out = []
        for key in box.keys():
            try:
                out.append(box.get_bytes(key))
            except (KeyError, FileNotFoundError):
                pass
        return out
    if not os.path.exists(path):
        return []
    box = mailbox.mbox(path, create=False)
    while True:
        try:
            box.lock()
            break
        except (mailbox.ExternalClashError, BlockingIOError, PermissionError):
            time.sleep(0.01)
    try:
        return [box.get_bytes(k) for k in box.keys()]
    finally:
        box.unlock()
        box.close()


while True:
    last = os.path.exists(stop)
    ids = set()
    started = time.monotonic()
    for data in one_pass():
        fid, err = check(data)
        if err is None and fid in ids:
            err = "message %s seen twice in one pass" % fid
        if err is not None and len(errors) < 20:
            errors.append(err)
        ids.add(fid)
    passes += 1
    seen_max = max(seen_max, len(ids))
    if last:
        break
    # A mail reader does not hold the mailbox locked all the time: pause
    # three times as long as the pass took, so the writers' lock attempts
    # (one a second, 20 in all) find it free most of the time.
    time.sleep(max(0.05, 3 * (time.monotonic() - started)))
json.dump({"passes": passes, "seen_max": seen_max, "errors": errors}, sys.stdout)
