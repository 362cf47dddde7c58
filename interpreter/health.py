"""Liveness for load balancers and `manage.py run`: answers without touching account data."""

from __future__ import annotations

from flask import Blueprint

from interpreter.auth import db

blueprint = Blueprint("health", __name__)


@blueprint.get("/healthz")
def healthz() -> tuple[dict, int]:
    with db().transaction() as conn:
        conn.execute("SELECT 1")
    return {"status": "ok"}, 200
