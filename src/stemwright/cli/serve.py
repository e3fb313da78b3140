"""``stemwright serve``: start stemwright studio."""
from __future__ import annotations

import ipaddress
import logging
import socket
from pathlib import Path

import typer
from platformdirs import user_data_dir


def is_loopback(host: str) -> bool:
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs --token."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port (0 picks a free one)."),
    data_dir: Path = typer.Option(None, "--data-dir", help="Library folder (default: the user data dir)."),
    workers: int = typer.Option(1, "--workers", min=1, max=16, help="Separation jobs run at once."),
    max_upload_mb: int = typer.Option(500, "--max-upload-mb", min=1, help="Largest accepted upload."),
    max_queue: int = typer.Option(16, "--max-queue", min=1, help="Jobs that may wait; more are refused (429)."),
    token: str = typer.Option(None, "--token", envvar="STEMWRIGHT_TOKEN", help="Access token required on every request."),
    model: str = typer.Option(None, "--model", "-m", help="Default separation model."),
) -> None:
    """Start stemwright studio: a local web app that separates songs and opens the stems in a live mixer."""
    import uvicorn

    from stemwright.server.app import ServerConfig, create_app

    if not is_loopback(host) and not token:
        typer.echo(f"error: binding to {host} exposes the studio to the network; pass --token TOKEN", err=True)
        raise typer.Exit(2)
    folder = Path(data_dir or user_data_dir("stemwright")) / ("" if data_dir else "studio")
    config = ServerConfig(data_dir=folder, workers=workers, max_upload_mb=max_upload_mb, token=token,
                          max_queue=max_queue, default_model=model)
    app = create_app(config)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as e:
        typer.echo(f"error: cannot listen on {host}:{port} ({e.strerror})", err=True)
        raise typer.Exit(1) from None
    bound_port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound_port}/" + (f"?token={token}" if token else "")
    typer.echo(f"stemwright studio: {url}  (library: {folder})", err=False)
    logging.getLogger("uvicorn.error").setLevel(logging.INFO)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
