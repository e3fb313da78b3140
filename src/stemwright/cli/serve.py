"""``stemwright serve``: start stemwright studio."""
from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path
from typing import Any

import typer
from platformdirs import user_data_dir


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def reachable_host(host: str) -> str:
    """A host for the printed URL: the bound one, or for a wildcard bind the address other machines use to reach
    this one (the source address of a route to a public address; connecting a UDP socket sends no packet)."""
    from stemwright.server.guard import is_wildcard

    if not is_wildcard(host):
        return host
    v6 = ":" in host
    try:
        with socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("2001:db8::1" if v6 else "192.0.2.1", 9))  # RFC 3849 / RFC 5737 documentation addresses
            address = s.getsockname()[0]
    except OSError:
        address = "::1" if v6 else "127.0.0.1"
    return address


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host`` (``[::1]`` and ``::1`` both accepted) and ``port``; raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if family == socket.AF_INET and not _is_ipv4(host):
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _is_ipv4(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 4
    except ValueError:
        return False


def run_server(config: Any, port: int) -> None:
    """Bind, print the URL and serve ``config`` until SIGINT/SIGTERM. The signal first ends the event streams
    and stops the jobs (``app.state.begin_shutdown``), so open browser tabs do not hold the shutdown up."""
    import uvicorn

    from stemwright.server.app import create_app

    host = config.host
    try:
        sock = bind(host, port)
    except OSError as e:
        typer.echo(f"error: cannot listen on {host}:{port} ({e.strerror or e})", err=True)
        raise typer.Exit(1) from None
    app = create_app(config)
    bound_port = sock.getsockname()[1]
    url = url_for(reachable_host(host), bound_port)
    if config.token:
        url += f"?token={config.token}"
    typer.echo(f"stemwright studio: {url}  (library: {config.data_dir})", err=False)

    class StudioServer(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            app.state.begin_shutdown()
            super().handle_exit(sig, frame)

    logging.getLogger("uvicorn.error").setLevel(logging.INFO)
    # the streams end at once on a signal; the grace period only bounds a download still in flight
    server = StudioServer(uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=3))
    server.run(sockets=[sock])


def command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --token."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0 picks a free one)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Library folder (default: the user data dir)."),
    workers: int = typer.Option(1, "--workers", min=1, max=16, help="Separation jobs run at once."),
    max_upload_mb: int = typer.Option(500, "--max-upload-mb", min=1, help="Largest accepted upload."),
    max_duration: float = typer.Option(7200, "--max-duration", min=1, help="Longest accepted upload, in seconds."),
    max_queue: int = typer.Option(16, "--max-queue", min=1, help="Jobs that may wait; more are refused (429)."),
    token: str = typer.Option(None, "--token", envvar="STEMWRIGHT_TOKEN",
                              help="Access token (16+ characters) required on every request."),
    allow_host: list[str] = typer.Option([], "--allow-host", help="Another Host name the studio answers to "
                                         "(repeatable), e.g. a name in /etc/hosts or a reverse proxy's."),
    model: str = typer.Option(None, "--model", "-m", help="Default separation model."),
) -> None:
    """Start stemwright studio: a local web app that separates songs and opens the stems in a live mixer."""
    from stemwright.atomic import check_writable_folder
    from stemwright.errors import OutputError
    from stemwright.server.app import ServerConfig
    from stemwright.server.guard import check_token

    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # URL-style IPv6 literal: bind() wants the bare address
    if not is_loopback(host) and not token:
        typer.echo(f"error: binding to {host} exposes the studio to the network; pass --token TOKEN", err=True)
        raise typer.Exit(2)
    if token is not None:
        try:
            check_token(token)
        except ValueError as e:
            typer.echo(f"error: --token: {e}", err=True)
            raise typer.Exit(2) from None
    folder = Path(data_dir or user_data_dir("stemwright")) / ("" if data_dir else "studio")
    try:
        check_writable_folder(folder)  # before binding: a read-only library is one error line, not a traceback
    except OutputError as e:
        typer.echo(f"error: --data-dir: {e}", err=True)
        raise typer.Exit(1) from None
    config = ServerConfig(data_dir=folder, host=host, allow_hosts=tuple(allow_host), workers=workers,
                          max_upload_mb=max_upload_mb, max_duration=max_duration, token=token,
                          max_queue=max_queue, default_model=model)
    run_server(config, port)
