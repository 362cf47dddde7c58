"""The media node process: the engine (`media`) wired to the broker and to PostgreSQL.

The engine knows nothing of databases; here its directory of extensions and the
persistence of registrations are implemented on `store`, and its commands and events
travel through `media.link`. May import `media`, `store` and `settings`.
"""
