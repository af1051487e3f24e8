"""WSGI entry point: `gunicorn wsgi:app` or `flask --app wsgi ...`."""

from diary import create_app, settle

app = create_app()
settle()
