"""A TCP proxy a test controls, put between filegate and a real dependency to break it.

Modes: ``pass`` forwards both ways; ``hang`` keeps every connection open and accepts new ones
but forwards nothing (a server that froze); ``cut`` closes every connection and refuses new
ones (a server that died or restarted). Loopback only, threads only, no dependencies.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Literal

Mode = Literal["pass", "hang", "cut"]


class TcpProxy:
    """Listens on a loopback TCP port; forwards to ``host:port``, or to a unix socket when
    ``target_port`` is None and ``target_host`` is its path (clamd's usual socket)."""

    def __init__(self, target_host: str, target_port: int | None) -> None:
        self.target = (target_host, target_port)
        self.mode: Mode = "pass"
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def url_for(self, template: str) -> str:
        """``template`` with ``{port}`` filled in, e.g. ``redis://127.0.0.1:{port}/0``."""
        return template.format(port=self.port)

    def set_mode(self, mode: Mode) -> None:
        self.mode = mode
        if mode == "cut":
            with self._lock:
                pairs, self._pairs = self._pairs, []
            for client, upstream in pairs:
                _close(client)
                _close(upstream)

    def close(self) -> None:
        self._stop.set()
        self.set_mode("cut")
        for thread in self._threads:
            thread.join(timeout=2)
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "cut":
                _close(client)
                continue
            try:
                upstream = self._connect_upstream()
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            thread = threading.Thread(target=self._pump, args=(client, upstream), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _connect_upstream(self) -> socket.socket:
        host, port = self.target
        if port is not None:
            return socket.create_connection((host, port), timeout=5)
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        upstream.settimeout(5)
        upstream.connect(host)
        return upstream

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while not self._stop.is_set():
                if self.mode == "hang":
                    self._stop.wait(0.05)  # hold the bytes: they are never forwarded
                    continue
                readable, _, _ = select.select(list(peers), [], [], 0.05)
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
        except (OSError, ValueError):  # ValueError: select on a socket a cut just closed
            return
        finally:
            _close(client)
            _close(upstream)


def _close(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.close()


@contextmanager
def tcp_proxy(host: str, port: int | None) -> Iterator[TcpProxy]:
    proxy = TcpProxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()
