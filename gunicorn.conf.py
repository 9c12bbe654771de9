"""gunicorn's settings for the web role: `gunicorn -c gunicorn.conf.py -b 127.0.0.1:5000 wsgi:app`.

One gevent worker: each connection (a Socket.IO WebSocket, an SSE stream, a send waiting for
its outcome, a plain request) is a greenlet, so a thousand live clients cost memory, not a
thread each (README, Running the roles separately). Options given on the command line win
over these. gunicorn reads this file before the worker patches the standard library and
loads the app: it imports nothing of the app but config.py's check of the settings (which
imports only the standard library).
"""

import os
import resource

worker_class = "gevent"
# Socket.IO's polling transport needs every request of a client on one worker: more web
# processes go behind a proxy with sticky sessions, not more workers here.
workers = 1
# Connections the worker holds at once (live clients and requests together); past this, new
# ones wait in the listen backlog until one closes.
worker_connections = 4000
# How long a connection may take to send a request's head, and stay idle between requests:
# past it the worker closes it, so idle or trickling clients cannot pile up.
keepalive = 5
# A worker whose loop stops turning this long (something blocking every greenlet) is restarted.
timeout = 30
graceful_timeout = 10


def on_starting(server) -> None:
    """Refuse to start without REDIS_URL and DATABASE_URL (gunicorn prints the reason and
    exits 1; wsgi.py checks again for other servers). Then let the worker open a file
    descriptor per connection it may hold, and some to spare (database and Redis
    connections, files): many systems start services with a soft limit of 1,024."""
    from config import shared_stores_missing

    problem = shared_stores_missing("web", os.environ)
    if problem:
        raise RuntimeError(problem)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = server.cfg.worker_connections + 1024
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        server.log.info("raised the open-file limit from %d to %d", soft, wanted)
