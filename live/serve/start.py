"""Start `live serve` from the config: the avatars, TLS and token, the URL to open, then serve until Ctrl-C."""

from __future__ import annotations

import asyncio
import errno
import faulthandler
import os
import signal
import socket

from aiohttp import web
from loguru import logger

from live.config import LiveConfig
from live.paths import config_dir, data_dir
from live.serve.avatars import AvatarCatalogue
from live.serve.server import EXTENSION, AvatarServer
from live.serve.tls import ServeSetupError, access_token, is_loopback, server_tls


def page_url(scheme: str, host: str, port: int, token: str | None) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"{scheme}://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(cfg: LiveConfig, ready=None) -> int:
    """Serve until stopped. `ready(url)` is called once the port listens (tests; the URL is also printed)."""
    s = cfg.serve
    if s.max_connections < 0:
        raise ServeSetupError("--max-connections must be 0 (one per CPU core) or more")
    max_connections = s.max_connections or os.cpu_count() or 1
    paths = ([cfg.run.avatar] if cfg.run.avatar else []) + [p for p in s.avatars if p != cfg.run.avatar]
    catalogue = AvatarCatalogue(paths, data_dir() / "serve-uploads", int(s.max_upload_mb * 1e6), s.max_uploads)
    context, fingerprint = server_tls(s.host, s.cert, s.key, s.self_signed, config_dir())
    token = access_token(s.host, s.token)
    server = AvatarServer(cfg, catalogue, token, max_connections)
    if hasattr(signal, "SIGUSR1"):      # `kill -USR1 PID`: every thread's stack on stderr (a server that will not stop)
        try:
            faulthandler.register(signal.SIGUSR1, all_threads=True)
        except (AttributeError, ValueError, OSError, RuntimeError) as e:    # a stderr without a file (embedded)
            logger.debug("no stack dump on SIGUSR1: {}", e)
    try:
        return asyncio.run(_serve(server, s.host, s.port, context, fingerprint, ready))
    except KeyboardInterrupt:                           # Ctrl-C: a normal end
        return 0


def _quiet_closed_connections(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """aiortc's own tasks that still try to send after a browser left raise ConnectionError nobody awaits; that
    is the end of a connection, already reported, not an error worth a traceback."""
    if isinstance(context.get("exception"), ConnectionError):
        logger.debug("after a connection ended: {}", context.get("exception"))
        return
    loop.default_exception_handler(context)


async def _serve(server: AvatarServer, host: str, port: int, context, fingerprint, ready) -> int:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_closed_connections)
    _stop_on_signals(loop, asyncio.current_task())
    runner = web.AppRunner(server.app(), handle_signals=False, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        await runner.cleanup()
        why = {errno.EADDRINUSE: "another program uses the port; give another with --port (0: any free one)",
               errno.EACCES: "ports under 1024 need admin rights; use a higher --port",
               errno.EADDRNOTAVAIL: "this machine has no such address; give one of its own with --host (0.0.0.0: "
                                    "all of them)"}.get(e.errno, "check --host and --port")
        raise ServeSetupError(f"cannot listen on {host}:{port} ({e.strerror}): {why}") from None
    if is_loopback(host):       # the names a browser on this machine uses; any other Host is refused
        bound = sock.getsockname()[1]
        server.local_hosts = tuple(f"{name}:{bound}" for name in ("127.0.0.1", "localhost", "[::1]"))
    site = web.SockSite(runner, sock, ssl_context=context)
    await site.start()
    url = page_url("https" if context else "http", host, sock.getsockname()[1], server.token)
    print(f"live serve: open {url}", flush=True)
    if fingerprint:
        print(f"  certificate SHA-256 fingerprint: {fingerprint}", flush=True)
    names = ", ".join(c.id for c in server.catalogue.list())
    print(f"  avatars: {names}; up to {server.max_connections} connections at once", flush=True)
    print(f"  browser extension (a 'live avatar' camera for web call apps): load unpacked from {EXTENSION}",
          flush=True)
    logger.info("serving on {}", url)
    if ready is not None:
        ready(url)
    try:
        await asyncio.Event().wait()        # until Ctrl-C / SIGTERM cancels it
    except asyncio.CancelledError:
        asyncio.current_task().uncancel()   # a normal end: aiohttp's shutdown reads a task being cancelled as a failure
    finally:
        await runner.cleanup()             # on_shutdown closes every connection and waits for its loop
    return 0


def _stop_on_signals(loop: asyncio.AbstractEventLoop, serving: asyncio.Task) -> None:
    """Ctrl-C (SIGINT) and SIGTERM cancel the serving task, which closes the connections while aiortc's own tasks
    still run, and then ends; a second signal stops at once.

    Also where the process started with SIGINT ignored (a script's background job). aiohttp's own signal handling
    raised its stop out of the event loop instead: the closing then ran while asyncio.run cancelled every task,
    and aiortc's close waited for ever on its own cancelled tasks, so a server with a browser connected never
    stopped. Windows' event loops take no signal handlers: there asyncio.run's Ctrl-C handling cancels the task."""
    signals = (signal.SIGINT, signal.SIGTERM)          # (both exist on every platform; Windows' loop takes neither)

    def first_stop() -> None:
        for sig in signals:                 # back to the defaults: a second Ctrl-C raises KeyboardInterrupt
            loop.remove_signal_handler(sig)
        serving.cancel()
    for sig in signals:
        try:
            loop.add_signal_handler(sig, first_stop)
        except (NotImplementedError, RuntimeError, ValueError):     # Windows; a thread other than the main one
            pass
