"""gunicorn settings of bench/checkoff.py's baseline: none beyond the command line's (2 sync workers).

Without a config of its own, gunicorn run from the repository root would read the diary's
gunicorn.conf.py, import the diary for its logging, and preload: the baseline is a bare Flask app."""
