"""Run wagate as a real process on a free loopback port, the way `python app.py` runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(base_url: str, process: subprocess.Popen, log_path: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if requests.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server not healthy after {timeout}s:\n{log_path.read_text()[-3000:]}")


@contextmanager
def embedded_server(data_dir: Path, **env: str):
    """`python app.py` with its own data folder; yields the base URL."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    environment = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "PORT": str(port),
        "PUBLIC_URL": base_url,
        "AUTH_RATE_LIMIT": "100 per 15 minutes",
        # Sends go as fast as the simulator answers (the governor's safe pace has its own tests).
        "PACE_MIN_GAP_SECONDS": "0",
        "PACE_JITTER_SECONDS": "0",
        "PACE_WARMUP": "",
        **env,
    }
    for name in ("DATABASE_URL", "REDIS_URL", "REDIS_SENTINELS"):
        environment.pop(name, None)
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=environment, stdout=log, stderr=log)
    try:
        wait_healthy(base_url, process, log_path)
        yield base_url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
