"""The web role for WSGI servers: gunicorn -c gunicorn.conf.py wsgi:app (one gevent worker)."""

from app import create_app

app = create_app()
