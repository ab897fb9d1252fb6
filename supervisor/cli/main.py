"""``ctrctl``: the command-line face of ctr.

Dispatch is in two steps, as git and hg do it: the global options and the verb first, then the
verb's own module, imported only then, parses the rest. ``ctrctl list`` thus never imports the
runtime (pyroute2 alone costs 100 ms), and a new verb is one line in ``VERBS``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from supervisor.cli.endpoint import Endpoint, host
from supervisor.cli.flags import flag
from supervisor.cli.helpformat import HelpFormatter, RawDescriptionHelpFormatter
from supervisor.model import defaults

# verb -> (module that implements it, under supervisor.cli unless dotted, and a summary)
GRADERS = "supervisor.graders.cli"  # the graders' verbs are theirs: supervisor.graders
VERBS: dict[str, tuple[str, str]] = {
    "run": ("run", "run a command in a new container, in the foreground (through ctrd if it "
            "runs, else alone)"),
    "list": ("containers", "list the containers ctrd knows"),
    "status": ("containers", "show one container"),
    "start": ("containers", "start a container; returns once it runs (--wait: once ready)"),
    "stop": ("containers", "stop a container (SIGTERM, then SIGKILL after its stop timeout)"),
    "restart": ("containers", "stop, then start a container"),
    "kill": ("containers", "send a signal to a container's PID 1 (default: KILL)"),
    "freeze": ("containers", "freeze every process of a container"),
    "thaw": ("containers", "thaw a frozen container"),
    "update": ("containers", "change a running container's resource limits"),
    "reload": ("containers", "make ctrd re-read the definitions"),
    "logs": ("logs", "print a container's output"),
    "exec": ("enter", "run a command inside a running container"),
    "shell": ("enter", "an interactive /bin/sh inside a running container"),
    "check": ("definitions", "validate definitions, and find a command the image lacks or a "
              "bind source that is missing (no ctrd needed)"),
    "cat": ("definitions", "print a merged definition with its files (no ctrd needed)"),
    "upload": (GRADERS, "store a configuration in the course graders' JSON format"),
    "cfginfo": (GRADERS, "list the stored graders' configurations"),
    "launch": (GRADERS, "start an instance of a graders' configuration: NAME MAJOR MINOR"),
    "destroy": (GRADERS, "stop and remove an instance of a graders' configuration"),
    "destroyall": (GRADERS, "stop and remove every instance of the graders' configurations"),
    "pull": ("images", "fetch an image from a registry into the store (no ctrd needed)"),
    "images": ("images", "list the images in the store"),
    "image": ("images", "image inspect REF (as JSON) | image prune (unused images and layers)"),
    "rmi": ("images", "remove an image (-f: even if containers use it)"),
    "load": ("images", "load images from a docker-archive, an oci-archive or an OCI layout"),
    "import": ("images", "make a one-layer image of a root-filesystem tarball: TARBALL REF"),
    "login": ("images", "store credentials for a registry: REGISTRY -u USER --password-stdin"),
    "logout": ("images", "forget the credentials for a registry"),
}


def _global_parser() -> argparse.ArgumentParser:
    verbs = "\n".join(f"  {verb:<9} {summary}" for verb, (_, summary) in VERBS.items())
    parser = argparse.ArgumentParser(
        prog="ctrctl", description="Manage ctr containers.",
        formatter_class=RawDescriptionHelpFormatter,
        epilog=f"verbs:\n{verbs}\n\n'ctrctl VERB --help' describes a verb.")
    env = os.environ.get
    parser.add_argument("--socket", type=Path, default=env("CTR_SOCKET"),
                        help="ctrd's API socket (default: STATE_DIR/ctrd.sock)")
    parser.add_argument("--host", "-H", type=flag(host), default=env("CTR_HOST"),
                        metavar="URL", help="ctrd at tcp://HOST:PORT (its --api-listen, with "
                        "the token) or unix:///PATH, instead of --socket ($CTR_HOST)")
    parser.add_argument("--api-token-file", type=Path, default=env("CTR_API_TOKEN_FILE"),
                        metavar="FILE", help="the token for tcp:// (default: "
                        f"STATE_DIR/{defaults.API_TOKEN}, as ctrd writes it)")
    parser.add_argument("--tls-ca", type=Path, default=env("CTR_TLS_CA"), metavar="FILE",
                        help="talk TLS to tcp://, checking ctrd's certificate against this CA")
    parser.add_argument("--tls-cert", type=Path, default=env("CTR_TLS_CERT"), metavar="FILE",
                        help="talk TLS to tcp://, presenting this client certificate (PEM)")
    parser.add_argument("--tls-key", type=Path, default=env("CTR_TLS_KEY"), metavar="FILE",
                        help="the key of --tls-cert, if that file does not hold it")
    parser.add_argument("--state-dir", type=Path,
                        default=Path(env("CTR_STATE_DIR", defaults.STATE_DIR)))
    parser.add_argument("--data-dir")
    parser.add_argument("--config-dir",
                        help="the only directory of definitions (default: $CTR_CONFIG_DIR, or "
                        "/etc/ctr, /run/ctr and /usr/lib/ctr)")
    parser.add_argument("--cgroup-driver", default=env("CTR_CGROUP_DRIVER", "auto"),
                        choices=defaults.CGROUP_DRIVERS)
    parser.add_argument("verb", choices=VERBS, metavar="VERB")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def _endpoint(args: argparse.Namespace) -> Endpoint:
    """Where the verbs that talk to ctrd find it: ``--host`` if given, else the socket."""
    if isinstance(args.host, Path):
        return Endpoint(args.host)
    if args.tls_key is not None and args.tls_cert is None:
        raise SystemExit("ctrctl: --tls-key needs --tls-cert")
    return Endpoint(args.socket, args.host,
                    args.api_token_file or args.state_dir / defaults.API_TOKEN,
                    args.tls_ca, args.tls_cert, args.tls_key)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    args = _global_parser().parse_args(argv)
    # As given, for ``check`` to resolve as ctrd does (a flag, else its variable, else ctrd.toml)
    args.flags = {"config_dir": args.config_dir, "data_dir": args.data_dir}
    args.data_dir = Path(args.data_dir or os.environ.get("CTR_DATA_DIR") or defaults.DATA_DIR)
    if args.socket is None:
        args.socket = args.state_dir / "ctrd.sock"
    args.api = _endpoint(args)
    module_name, summary = VERBS[args.verb]
    module = importlib.import_module(module_name if "." in module_name
                                     else f"supervisor.cli.{module_name}")
    verb_parser = getattr(module, "Parser", argparse.ArgumentParser)  # a verb may bring its own
    parser = verb_parser(prog=f"ctrctl {args.verb}", description=summary,
                         formatter_class=HelpFormatter)
    module.configure(args.verb, parser)
    return parser.parse_args(args.args, namespace=args)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except (OSError, ValueError, LookupError, RuntimeError) as exc:
        if os.environ.get("CTR_DEBUG"):
            raise
        print(f"ctrctl: {'; '.join(str(exc).splitlines())}", file=sys.stderr)
        return 125 if args.verb == "run" else 1  # docker's convention: 125 when run itself fails


if __name__ == "__main__":
    sys.exit(main())
