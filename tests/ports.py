"""Free 127.0.0.1 ports for the multi-process tests (torchrun's master, TF_CONFIG workers, the JAX coordinator)."""

from __future__ import annotations

import socket


def free_ports(count: int = 1) -> list[int]:
    """``count`` distinct ports the OS has just handed out as free: all bound to port 0 at once (so they differ),
    then released for the processes to bind."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
