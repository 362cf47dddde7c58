"""The Celery application and its tasks: thin glue from broker messages to domain code.

A task decodes its message, calls one function of `interpreter` or `calls`, and returns;
no business rule lives in a task body. May import everything but `media` internals
(it uses `media.protocol` and `media.link` only).
"""
