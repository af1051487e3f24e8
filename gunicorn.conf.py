"""Read by gunicorn from the working directory: its own lines (start, workers, timeouts) go through
the app's root handler and format (diary/logs.py), so one log holds one format.

The app is built once, in the master, and the workers are forked from it (preload_app): wsgi.py
freezes what start-up made (diary.settle, gc.freeze) before the fork, so the workers share those
pages instead of each building and holding its own copy. Measured with bench/checkoff.py's load
(issue 15): each worker's RSS after the load 93 MiB instead of 100, its PSS 57 instead of 69.
A code change therefore needs a restart of gunicorn, not a HUP (which only re-forks workers)."""

from diary.logs import gunicorn_logconfig

logconfig_dict = gunicorn_logconfig()
preload_app = True
