"""WSGI entry point: `gunicorn wsgi:app` or `flask --app wsgi ...`.

gunicorn imports this module once, in its master (gunicorn.conf.py: preload_app), and forks the
workers from it: nothing here may open a connection that a worker would then share. The engine
opens none at start-up; should one ever be pooled before a fork, the child drops its copy of the
pool (without closing the parent's connection) and opens its own."""

import os

from diary import create_app, settle

app = create_app()
os.register_at_fork(after_in_child=lambda: app.extensions["diary.engine"].dispose(close=False))
settle()
