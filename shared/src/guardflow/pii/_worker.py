"""A PII detection worker: ``python -m guardflow.pii._worker``, started by ``ParallelDetector``.

It reads request frames on standard input until it closes and writes one reply frame per
request: ``("ok", result)``, or ``("error", message)`` naming the exception's type only (a
message could quote the text). Anything else that writes to standard output (a library's
print) goes to standard error instead, so it cannot break the frames.
"""

from __future__ import annotations

import os
import sys


def main() -> int:
    """Serve requests until standard input closes; the exit code."""
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = sys.stdin.buffer
    from guardflow.pii._parallel import read_frame, serve, write_frame

    while True:
        try:
            request = read_frame(requests)
        except EOFError:
            return 0
        try:
            reply = ("ok", serve(request))
        except Exception as exc:  # reported to the parent, which raises
            reply = ("error", type(exc).__name__)
        try:
            write_frame(replies, reply)
        except BrokenPipeError:  # the parent stopped listening (it is closing): leave quietly
            return 0


if __name__ == "__main__":
    sys.exit(main())
