"""pyroute2's rtnetlink messages, loaded without the package's ``__init__``.

Python runs ``pyroute2/__init__.py`` before any ``pyroute2.X``, and that imports the whole
library (IPRoute, NDB, IPDB, conntrack, wireless, the asyncio sockets and asyncio itself): about
110 ms in a fresh process, for the four message classes and the decoder ``netlink`` needs, which
cost about a quarter of that on their own. So the package is registered bare (its ``__path__``,
not its ``__init__``) before they are imported. The first look-up of a name only ``__init__``
defines (``from pyroute2 import IPRoute`` anywhere else in the process) runs ``__init__`` then,
into the same module: pyroute2 works as ever for every other user. Replies are decoded by the
base ``Marshal`` (``pyroute2.netlink.marshal``): rtnetlink's own imports the socket classes and
asyncio, and only acknowledgements are read here.
"""

from __future__ import annotations

import importlib.util
import sys


def _register_bare_package(name: str = "pyroute2") -> None:
    """``name`` in ``sys.modules`` without having run its ``__init__``; completed on demand."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}", name=name)
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)

    def complete(attribute: str) -> object:
        # A submodule is imported as usual (``from pyroute2 import config`` asks hasattr first).
        if importlib.util.find_spec(f"{name}.{attribute}") is not None:
            raise AttributeError(attribute)
        del package.__dict__["__getattr__"]
        loader.exec_module(package)
        return getattr(package, attribute)

    package.__dict__["__getattr__"] = complete
    sys.modules[name] = package


_register_bare_package()

from pyroute2.netlink import (  # noqa: E402
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_EXCL,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSG_ERROR,
)
from pyroute2.netlink.marshal import Marshal  # noqa: E402
from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE  # noqa: E402
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg  # noqa: E402
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg  # noqa: E402
from pyroute2.netlink.rtnl.rtmsg import rtmsg  # noqa: E402

__all__ = [
    "IFF_UP",
    "NLMSG_ERROR",
    "NLM_F_ACK",
    "NLM_F_CREATE",
    "NLM_F_EXCL",
    "NLM_F_REPLACE",
    "NLM_F_REQUEST",
    "RTM_DELLINK",
    "RTM_NEWADDR",
    "RTM_NEWLINK",
    "RTM_NEWROUTE",
    "Marshal",
    "ifaddrmsg",
    "ifinfmsg",
    "rtmsg",
]
