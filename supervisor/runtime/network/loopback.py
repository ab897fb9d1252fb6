"""Bring up the loopback interface of the calling thread's network namespace.

A new network namespace has only ``lo``, and down. PID 1 brings it up itself, right after
unsharing the namespace: two ioctls on a datagram socket, where a netlink request would load
pyroute2 (about 100 ms of imports in a fresh ``ctrctl``) and a thread joining the namespace.
"""

from __future__ import annotations

import fcntl
import socket
import struct

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1
_IFREQ = "16sH22x"  # struct ifreq: the name, then ifr_flags in the union (40 bytes in all)


def bring_up(ifname: str = "lo") -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack(_IFREQ, ifname.encode(), 0)
        _, flags = struct.unpack(_IFREQ, fcntl.ioctl(sock, _SIOCGIFFLAGS, request))
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack(_IFREQ, ifname.encode(), flags | _IFF_UP))
