"""Configuration from the environment, read once into an immutable `Settings`.

Every process (web, worker, media, `manage.py` commands) builds its `Settings` with
`Settings.from_env()`; nothing else in the code base reads `os.environ`, so a test can
hand any component the exact configuration it wants.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent

# Loopback is allowed for webhooks only when configured; the demo (`manage.py run`
# with embedded services) turns it on so scripts served from this machine work.
LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _realtime_priority(value: str) -> int:
    try:
        priority = int(value)
    except ValueError:
        priority = -1
    if not 0 <= priority <= 99:
        raise ValueError(
            f"MEDIA_REALTIME_PRIORITY: {value!r} is not a SCHED_FIFO priority; "
            "use 1-99, or 0 for ordinary scheduling"
        )
    return priority


def _networks(value: str) -> tuple[str, ...]:
    items = tuple(part.strip() for part in value.replace(";", ",").split(",") if part.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise ValueError(
                f"WEBHOOK_ALLOW_NETWORKS: {item!r} is not a network; "
                "use CIDR notation such as 127.0.0.0/8 or 10.1.0.0/16"
            ) from exc
    return items


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything configurable; see the README's Configuration section."""

    var_dir: Path = ROOT / "var"
    database_url: str | None = None
    broker_url: str | None = None
    port: int = 8000
    sip_port: int = 5060
    sip_host: str = "127.0.0.1"
    public_url: str = "http://127.0.0.1:8000"
    media_node: str = "node-1"
    queue_prefix: str = "voice"
    secret_key: str | None = None
    webhook_allow_networks: tuple[str, ...] = ()
    webhook_connect_timeout: float = 3.05
    webhook_read_timeout: float = 15.0
    broker_visibility_timeout: float = 60.0
    trunk_uri: str | None = None
    trunk_username: str | None = None
    trunk_password: str | None = None
    sip_advertised_host: str | None = None
    sip_digest_algorithms: tuple[str, ...] = ("MD5",)
    sip_t1: float = 0.5
    sip_t2: float = 4.0
    sip_t4: float = 5.0
    rtp_port_min: int = 20000
    rtp_port_max: int = 30000
    media_realtime_priority: int = 10
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        var_dir = Path(env.get("VAR_DIR", str(ROOT / "var")))
        port = int(env.get("PORT", "8000"))
        return cls(
            var_dir=var_dir,
            database_url=env.get("DATABASE_URL") or None,
            broker_url=env.get("CELERY_BROKER_URL") or None,
            port=port,
            sip_port=int(env.get("SIP_PORT", "5060")),
            sip_host=env.get("SIP_HOST", "127.0.0.1"),
            public_url=env.get("PUBLIC_URL", f"http://127.0.0.1:{port}").rstrip("/"),
            media_node=env.get("MEDIA_NODE", "node-1"),
            queue_prefix=env.get("QUEUE_PREFIX", "voice"),
            secret_key=env.get("SECRET_KEY") or None,
            webhook_allow_networks=_networks(env.get("WEBHOOK_ALLOW_NETWORKS", "")),
            webhook_connect_timeout=float(env.get("WEBHOOK_CONNECT_TIMEOUT", "3.05")),
            webhook_read_timeout=float(env.get("WEBHOOK_READ_TIMEOUT", "15")),
            broker_visibility_timeout=float(env.get("BROKER_VISIBILITY_TIMEOUT", "60")),
            trunk_uri=env.get("TRUNK_URI") or None,
            trunk_username=env.get("TRUNK_USERNAME") or None,
            trunk_password=env.get("TRUNK_PASSWORD") or None,
            sip_advertised_host=env.get("SIP_ADVERTISED_HOST") or None,
            sip_digest_algorithms=_digest_algorithms(env.get("SIP_DIGEST_ALGORITHMS", "MD5")),
            sip_t1=float(env.get("SIP_T1", "0.5")),
            sip_t2=float(env.get("SIP_T2", "4")),
            sip_t4=float(env.get("SIP_T4", "5")),
            rtp_port_min=int(env.get("RTP_PORT_MIN", "20000")),
            rtp_port_max=int(env.get("RTP_PORT_MAX", "30000")),
            media_realtime_priority=_realtime_priority(env.get("MEDIA_REALTIME_PRIORITY", "10")),
            log_level=env.get("LOG_LEVEL", "INFO"),
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)

    @property
    def events_queue(self) -> str:
        return f"{self.queue_prefix}.events"

    @property
    def tasks_queue(self) -> str:
        return f"{self.queue_prefix}.tasks"

    def media_queue(self, node: str) -> str:
        return f"{self.queue_prefix}.media.{node}"

    def resolved_secret_key(self) -> str:
        """The key that seals auth tokens at rest; kept in `var/secret_key` if not given."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if not path.exists():
            # Written aside and linked into place, so a concurrent reader never sees a
            # half-written key and concurrent writers agree on the first one.
            path.parent.mkdir(parents=True, exist_ok=True)
            draft = path.with_name(f".secret_key.{os.getpid()}")
            fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        return path.read_text().strip()


def _digest_algorithms(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(name.strip().upper() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in ("MD5", "SHA-256")]
    if unknown or not names:
        raise ValueError(
            f"SIP_DIGEST_ALGORITHMS={text!r}: give MD5 and/or SHA-256, comma-separated,"
            " most preferred first"
        )
    return names
