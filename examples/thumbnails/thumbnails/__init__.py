"""Example taskq tasks: ``thumbnails.contract`` declares them (what the producer loads), and
``thumbnails.work`` holds the handler (what only the worker imports, with Pillow)."""
