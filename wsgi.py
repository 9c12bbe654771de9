"""The web role for WSGI servers: gunicorn -c gunicorn.conf.py wsgi:app (one gevent worker).

It runs beside the worker and engine hosts, so it refuses to load without REDIS_URL and
DATABASE_URL (config.shared_stores_missing; gunicorn.conf.py says so before any worker starts).
"""

import os

from app import create_app
from config import shared_stores_missing

problem = shared_stores_missing("web", os.environ)
if problem:
    raise RuntimeError(problem)

app = create_app()
