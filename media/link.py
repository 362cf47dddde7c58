"""A media node's connection to the platform over the broker: commands in, events out.

Commands arrive on the node's own durable queue, bound to the `<prefix>.media` direct
exchange with the node's name as routing key; events leave as Celery task messages for
`worker.apply_event` on `<prefix>.events`, so any worker can take them. Only kombu and
celery (the libraries) are used here: the node needs nothing from the worker's code.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu import Connection, Consumer, Exchange, Queue

from media.protocol import ProtocolError, check_command

log = logging.getLogger(__name__)

APPLY_EVENT_TASK = "worker.apply_event"


def media_exchange(prefix: str) -> Exchange:
    return Exchange(f"{prefix}.media", type="direct", durable=True)


def media_queue(prefix: str, node: str) -> Queue:
    return Queue(f"{prefix}.media.{node}", media_exchange(prefix), routing_key=node, durable=True)


class BrokerLink:
    """Consumes the node's commands and publishes its events."""

    def __init__(
        self,
        broker_url: str,
        node: str,
        *,
        prefix: str,
        transport_options: dict[str, Any] | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.node = node
        self.prefix = prefix
        self.transport_options = transport_options or {}
        self._events = Celery("media-link", broker=broker_url, set_as_current=False)
        self._events.conf.broker_transport_options = self.transport_options
        self._events.conf.broker_connection_retry_on_startup = True
        self._stopped = threading.Event()

    def publish_event(self, event: dict[str, Any]) -> None:
        self._events.send_task(
            APPLY_EVENT_TASK, args=[event], queue=f"{self.prefix}.events", retry=True
        )

    def stop(self) -> None:
        self._stopped.set()

    def run(self, handle_command: Callable[[dict[str, Any]], None]) -> None:
        """Deliver commands to `handle_command` until `stop()`; reconnects on broker loss."""
        queue = media_queue(self.prefix, self.node)

        def on_message(body: Any, message: Any) -> None:
            try:
                command = check_command(body)
            except ProtocolError as error:
                log.error("node %s dropped a malformed command: %s", self.node, error)
            else:
                try:
                    handle_command(command)
                except Exception:
                    log.exception("node %s failed on command %s", self.node, body)
            message.ack()

        while not self._stopped.is_set():
            try:
                with (
                    Connection(self.broker_url, transport_options=self.transport_options) as conn,
                    Consumer(conn, [queue], callbacks=[on_message], accept=["json"]),
                ):
                    while not self._stopped.is_set():
                        try:
                            conn.drain_events(timeout=0.5)
                        except TimeoutError:
                            continue
            except (OSError, ConnectionError) as error:
                log.warning("node %s lost the broker (%s); reconnecting", self.node, error)
                self._stopped.wait(1.0)
