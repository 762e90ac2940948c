"""``tweetscope studio``: serve the studio on 127.0.0.1 (all JS/CSS served locally)."""

from __future__ import annotations

import argparse
import socket
import sys
import threading
from pathlib import Path

from pipeline.cli.common import add_data_dir, workspace_from_args
from pipeline.core.workspace import Workspace
from studio.app import create_app
from studio.jobs import get_runner

DEFAULT_PORT = 5006


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def serve_studio(data_dir: Path, port: int = DEFAULT_PORT, host: str = "127.0.0.1",
                 open_browser: bool = True, sample: bool = False) -> None:
    """Start the server (blocking) and print its URL on stdout."""
    import panel as pn

    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(data_dir)
    workspace.cleanup_temps()  # leftovers of a crashed run are never valid artifacts
    runner = get_runner(data_dir)
    if sample:
        from studio.bootstrap import bootstrap_sample

        jobs = bootstrap_sample(workspace, runner)
        if jobs:
            print(f"First start: {len(jobs)} sample job(s) queued ({', '.join(j.stage for j in jobs)})", flush=True)
    port = port or free_port(host)
    pn.config.inline = False  # resources come from this server's /static, never a CDN
    origins = [f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"]
    server = pn.serve(
        {"/": lambda: create_app(data_dir, runner)}, port=port, address=host,
        websocket_origin=origins, show=False, start=False, title="Tweetscope Studio",
        verbose=False, websocket_max_message_size=256 * 1024 * 1024,
    )
    server.start()
    threading.Thread(target=warm_up, daemon=True, name="tweetscope-warm-up").start()
    url = f"http://{host}:{port}/"
    print(f"Studio running at {url}", flush=True)
    if open_browser:
        import webbrowser

        server.io_loop.add_callback(lambda: webbrowser.open(url))
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        print("Studio stopped.", file=sys.stderr)
    finally:
        server.stop()


def cmd_studio(args: argparse.Namespace) -> int:
    data_dir = workspace_from_args(args).data_dir
    serve_studio(data_dir, port=args.port, host=args.host, open_browser=not args.no_browser,
                 sample=args.sample)
    return 0


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("studio", help="open the web studio (local, 127.0.0.1)")
    add_data_dir(p, dataset=False)
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; anything else exposes your archive)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    p.add_argument("--sample", action="store_true",
                   help="with an empty data dir, ingest the bundled sample archive and run its pipeline")
    p.set_defaults(func=cmd_studio)


def warm_up() -> None:
    """Import the heavy stage modules once, off the request path (the first page opens faster)."""
    import contextlib

    with contextlib.suppress(Exception):
        from pipeline.stages.labels import stage as _labels  # noqa: F401  (toponymy: seconds to import)
    with contextlib.suppress(Exception):
        import datashader  # noqa: F401
        import holoviews  # noqa: F401
        from holoviews.operation import datashader as _hvds  # noqa: F401
