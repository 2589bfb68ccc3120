"""`kneeroll web`, and the site beside `kneeroll demo --web`: uvicorn serving the app."""

from __future__ import annotations

import socket
import threading

from ..cliutil import add_common_options, load_for, whole_in
from ..errors import InputError


def server_for(config, bind: str, port: int):
    """A uvicorn server for the site (not started); a taken port is a clear error."""
    import uvicorn

    from .app import create_app

    _check_free(bind, port)
    settings = uvicorn.Config(create_app(config), host=bind, port=port, log_level="warning", access_log=False,
                              proxy_headers=False, server_header=False, lifespan="on",
                              timeout_graceful_shutdown=1)  # an open live page must not hold a stop up
    return uvicorn.Server(settings)


def _check_free(bind: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError as exc:
            raise InputError(f"cannot serve the site on {bind}:{port}: {exc.strerror}",
                             "choose another port with --port (or web.port in the config), or stop what uses it") from None


def url_of(bind: str, port: int, path: str = "/") -> str:
    host = "localhost" if bind in ("0.0.0.0", "::", "127.0.0.1", "::1") else bind
    return f"http://{host}:{port}{path}"


def start_in_thread(config, bind: str, port: int):
    """Serves the site from a thread (for the demo); returns the server, to stop with .should_exit."""
    server = server_for(config, bind, port)
    thread = threading.Thread(target=server.run, name="kneeroll-web", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        thread.join(0.05)
    if not server.started:
        raise InputError(f"the site did not start on {bind}:{port}", "run with --debug to see why")
    return server, thread


def cmd_web(args) -> int:
    config = load_for(args)
    bind = args.bind or config.web.bind
    port = args.port if args.port is not None else config.web.port
    server = server_for(config, bind, port)
    print(f"kneeroll web: serving {url_of(bind, port)} (read-only; Ctrl-C stops it)", flush=True)
    server.run()
    return 0


def register(commands) -> None:
    web = commands.add_parser("web", help="serve the phone site: today, the live view, sessions, progress, export")
    web.add_argument("--port", type=whole_in(1, 65535), help="the TCP port (default: web.port in the config, 8080)")
    web.add_argument("--bind", metavar="ADDRESS", help="the address to listen on (default: web.bind, 0.0.0.0)")
    add_common_options(web, data_dir=True)
    web.set_defaults(func=cmd_web)
