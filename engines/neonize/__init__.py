"""The real WhatsApp engine: neonize, a Python binding of the Go library whatsmeow.

Only the engine host imports this package, and only with WA_ENGINE=neonize: importing it
loads neonize's Go runtime into the process, after which the process must never fork.
Importing it here, before any submodule, loads the library the way the engine needs it:

- while it loads, neonize asks `uname -a` through `os.popen` (to tell Android from Linux)
  and leaves the child unwaited and its pipe open, to be cleaned up (with a warning) by
  whatever starts the next subprocess. It gets the same answer from `platform.uname()`
  instead, and nothing is spawned;
- each session's Go loop runs on a thread neonize starts as non-daemon. A dial that hangs
  (up to 60 s) or a pairing whose QR codes ran out keeps that thread in Go, and the
  interpreter would wait for it at exit. The engine stops every client before it lets go,
  so those threads are made daemon threads: the process can always end.
"""

import io
import logging
import os
import platform
import sys
import threading

# A Go call blocks the thread that makes it: in a process gevent has patched (the web role
# under gunicorn's gevent worker) that thread is every greenlet's, and the process would freeze.
_monkey = sys.modules.get("gevent.monkey")
if _monkey is not None and _monkey.is_module_patched("socket"):
    raise RuntimeError(
        "neonize cannot run in a process patched by gevent: start the engine host with "
        "`flask --app app engine-host`, never inside the web role's gevent worker"
    )

_popen = os.popen


def _uname(command: str, *args, **kwargs):
    if command != "uname -a":
        return _popen(command, *args, **kwargs)
    return io.StringIO(" ".join(platform.uname()))


# neonize's Go SendMessage tags 1:1 messages as from a business bot (<bot biz_bot="1"/>)
# unless NEONIZE_BOT_TAG=off; Go reads it once as the library loads, so it is set before.
# An operator can still set it otherwise in the engine host's environment.
os.environ.setdefault("NEONIZE_BOT_TAG", "off")
os.popen = _uname
try:
    import neonize.client
finally:
    os.popen = _popen


class _DaemonThread(threading.Thread):
    def __init__(self, *args, daemon: bool | None = None, **kwargs) -> None:
        super().__init__(*args, daemon=True, **kwargs)


neonize.client.Thread = _DaemonThread
# Go reads its log level from this logger when a client connects; DEBUG floods the log.
logging.getLogger("neonize.utils.log").setLevel(logging.WARNING)
