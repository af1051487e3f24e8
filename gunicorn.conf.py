"""Read by gunicorn from the working directory: its own lines (start, workers, timeouts) go through
the app's root handler and format (diary/logs.py), so one log holds one format."""

from diary.logs import gunicorn_logconfig

logconfig_dict = gunicorn_logconfig()
