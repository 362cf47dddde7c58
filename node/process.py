"""Running a media node: the engine on an asyncio loop, commands from the broker on a
thread, events to the broker from another (a publish may block; the loop never does)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import queue
import signal
import threading
from typing import Any

from media.engine import Engine, EngineConfig, TrunkConfig
from media.link import BrokerLink
from media.metronome import prefer_realtime
from media.sip.clock import LoopClock, TimerSettings
from media.sip.uri import SipUri
from node.directory import StoreDirectory
from settings import Settings
from store.database import Database

log = logging.getLogger(__name__)


class EventPublisher:
    """Publishes events in the order they were emitted, off the event loop."""

    def __init__(self, link: BrokerLink) -> None:
        self._link = link
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="events", daemon=True)
        self._thread.start()

    def publish(self, event: dict[str, Any]) -> None:
        self._queue.put(event)

    def _run(self) -> None:
        while (event := self._queue.get()) is not None:
            try:
                self._link.publish_event(event)
            except Exception:
                log.exception("event %s of %s not published", event["type"], event["call"])

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)


def engine_config(settings: Settings) -> EngineConfig:
    trunk = None
    if settings.trunk_uri:
        trunk = TrunkConfig(
            SipUri.parse(settings.trunk_uri, "TRUNK_URI"),
            settings.trunk_username,
            settings.trunk_password,
        )
    return EngineConfig(
        node=settings.media_node,
        sip_host=settings.sip_host,
        sip_port=settings.sip_port,
        advertised_host=settings.sip_advertised_host,
        rtp_ports=(settings.rtp_port_min, settings.rtp_port_max),
        trunk=trunk,
        # Nonces are signed with a key derived from SECRET_KEY (any length), so every
        # node of a deployment accepts the nonces of the others.
        secret=hashlib.sha256(b"sip nonce " + settings.resolved_secret_key().encode()).digest(),
        timers=TimerSettings(t1=settings.sip_t1, t2=settings.sip_t2, t4=settings.sip_t4),
        digest_algorithms=settings.sip_digest_algorithms,
        recordings=settings.var_dir / "recordings",
        fetch_allow_networks=settings.webhook_allow_networks,
    )


async def serve(settings: Settings, link: BrokerLink, db: Database) -> None:
    loop = asyncio.get_running_loop()
    # First: the threads started below (events, commands, the executor's) stay ordinary.
    priority = settings.media_realtime_priority
    if prefer_realtime(priority):
        log.info("media clock at realtime priority %d (SCHED_FIFO)", priority)
    elif priority:
        log.warning(
            "media clock at ordinary priority: realtime priority %d is not permitted here "
            "(run as root, grant CAP_SYS_NICE or set an rtprio limit); on a busy machine "
            "its packets may leave late",
            priority,
        )
    publisher = EventPublisher(link)
    directory = StoreDirectory(db, settings.media_node)
    engine = Engine(
        engine_config(settings), directory=directory, emit=publisher.publish, clock=LoopClock(loop)
    )
    restored = engine.restore_bindings(directory.node_bindings())
    if restored:
        log.info("%s phone registrations restored", restored)
    await engine.start()
    stopped = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopped.set)
    commands = threading.Thread(
        target=link.run,
        args=(lambda command: loop.call_soon_threadsafe(engine.execute, command),),
        name="commands",
        daemon=True,
    )
    commands.start()
    log.info("media node %s ready", settings.media_node)
    try:
        await stopped.wait()
    finally:
        link.stop()
        await engine.stop()
        commands.join(5)
        publisher.close()
        directory.close()
