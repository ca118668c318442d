"""A small TCP proxy for fault injection: put it between the origin and S3 or Redis, then break it.

Faults, each switchable at any time, mid-traffic:
- `latency`: every chunk, both ways, is held this many seconds before it is passed on;
- `reset()`: every open connection is closed with an RST (SO_LINGER 0), as a crashed peer or
  a middlebox would; with `refuse`, new connections are reset as soon as they are accepted;
- `blackhole`: connections are accepted (and kept) but nothing is passed either way, as a
  peer that hangs or a firewall that drops packets: only the client's deadlines end it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self.latency = 0.0
        self.blackhole = False
        self.refuse = False
        self.accepted = 0
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def heal(self) -> None:
        """No fault any more (connections reset meanwhile stay closed: clients reconnect)."""
        self.latency = 0.0
        self.blackhole = False
        self.refuse = False

    def reset(self) -> None:
        """RST every open connection, both sides."""
        for writer in list(self._writers):
            _abort(writer)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.reset()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self.refuse:
            _abort(writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(writer)
            return
        self._writers.update((writer, upstream_writer))
        pumps = [
            asyncio.ensure_future(self._pump(reader, upstream_writer)),
            asyncio.ensure_future(self._pump(upstream_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for end in (writer, upstream_writer):
                self._writers.discard(end)
                with contextlib.suppress(Exception):
                    end.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    with contextlib.suppress(OSError):
                        writer.write_eof()
                    await asyncio.Event().wait()  # half-closed: the other direction may still flow
                if self.latency:
                    await asyncio.sleep(self.latency)
                while self.blackhole:  # held, never passed on (and never dropped: TCP would not)
                    await asyncio.sleep(0.05)
                writer.write(chunk)
                await writer.drain()


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError, AttributeError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
