"""Training jobs: queued → running (stage, percent, heartbeat) → succeeded / failed.

The same runner executes a job in the embedded worker (a child process per job) and in a
Celery worker; a job whose heartbeat goes silent past the lease is marked failed.
"""
