"""waitress as the caretaker's page runs it: idle connections closed soon, and waitress's own error replies carrying
the security headers every page of the app carries.

waitress answers some requests without the app: one it cannot parse (a malformed request line, 400), headers too
large (431), a body over its limit (413), a transfer coding it does not know (501), and an app that failed before
answering (500). Its `ErrorTask` writes those replies; each accepted connection is an `HTTPChannel`, whose
`error_task_class` names that task, and each listening server makes its connections from its `channel_class`.
"""

from __future__ import annotations

from waitress import create_server
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import ErrorTask

from wardrobe.web.security import HEADERS

THREADS = 4
"""Requests served at once (a Pi 4 has four cores)."""
CONNECTIONS = 100
"""Connections open at once (waitress's default); beyond it waitress accepts no more until one closes."""


class HeaderedErrorTask(ErrorTask):
    """waitress's own error reply with the page's security headers (no sniffing its text as HTML, never framed)."""

    def execute(self):
        self.response_headers.extend(HEADERS.items())  # before the reply is written: its headers go first
        super().execute()


class HeaderedChannel(HTTPChannel):
    """A connection whose error replies are `HeaderedErrorTask`s."""

    error_task_class = HeaderedErrorTask


def make_server(app, host: str, port: int, idle_s: int, **options):
    """A waitress server for the app on host:port (port 0: a free one), not yet running: a connection that sends
    nothing for idle_s seconds with no request under way is closed (within a quarter of idle_s more: waitress looks
    that often), and waitress's own error replies carry the security headers."""
    listeners: dict = {}
    server = create_server(app, map=listeners, host=host, port=port, threads=THREADS, ident="wardrobe",
                           clear_untrusted_proxy_headers=True, connection_limit=CONNECTIONS,
                           channel_timeout=idle_s, cleanup_interval=max(1, idle_s // 4), **options)
    for listener in list(listeners.values()):  # one per address the host resolves to (create_server has no
        if isinstance(listener, BaseWSGIServer):  # argument for it; each reads channel_class at every accept)
            listener.channel_class = HeaderedChannel
    return server
