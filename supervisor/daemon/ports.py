"""Published ports: a userspace TCP proxy from a host port to the container's address.

As docker-proxy does, each ``ports = ["8080:80/tcp"]`` entry listens on the host and copies
bytes both ways to the container's port over the veth network. It works for connections from
the host itself (loopback), which kernel DNAT alone does not reach without extra sysctls, and
needs no firewall rules that could outlive ctrd. It runs on ctrd's event loop, so published
ports follow the container: opened when it runs, closed when it stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

from supervisor.model.spec import PortMapping

log = logging.getLogger(__name__)

BUFFER = 65536


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(BUFFER):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


class Publisher:
    """The listeners of one container's published ports."""

    def __init__(self, name: str, address: str, ports: tuple[PortMapping, ...],
                 host: str = "0.0.0.0") -> None:
        self.name = name
        self.address = address
        self.ports = ports
        self.host = host
        self._servers: list[asyncio.Server] = []
        self._connections: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Listen on every host port; all or none (a port in use is an error naming it)."""
        try:
            for port in self.ports:
                if port.protocol != "tcp":
                    raise ValueError(f"{port.host_port}/{port.protocol}: only tcp ports can be "
                                     "published")
                server = await asyncio.start_server(
                    functools.partial(self._accept, target=port.container_port),
                    self.host, port.host_port, reuse_address=True)
                self._servers.append(server)
        except OSError as exc:
            await self.close()
            raise OSError(exc.errno, f"cannot publish port: {exc.strerror}") from exc
        except BaseException:
            await self.close()
            raise

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                target: int) -> None:
        task = asyncio.get_running_loop().create_task(self._relay(reader, writer, target))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     target: int) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.address, target)
        except OSError as exc:
            log.info("%s: port %d: %s", self.name, target, exc)
            writer.close()
            return
        try:
            await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))
        finally:
            for w in (writer, upstream_writer):
                w.close()

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
