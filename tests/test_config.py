"""Configuration defaults that depend on other settings, read from a fresh environment."""

import json
import os
import subprocess
import sys

import pytest

from tests.live import ROOT


def _config(**env: str) -> dict:
    """Config's values as `python app.py` would read them from this environment."""
    environment = {name: value for name, value in os.environ.items() if name not in {"PUBLIC_URL", "HOST", "PORT"}}
    script = "import json; from config import Config; print(json.dumps({'PUBLIC_URL': Config.PUBLIC_URL}))"
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=environment | env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("env", "public_url"),
    [
        ({}, "http://127.0.0.1:5000"),
        ({"PORT": "5055"}, "http://127.0.0.1:5055"),
        ({"HOST": "192.168.1.20", "PORT": "8080"}, "http://192.168.1.20:8080"),
        ({"HOST": "0.0.0.0", "PORT": "5055"}, "http://127.0.0.1:5055"),
        ({"HOST": "::1"}, "http://[::1]:5000"),
        ({"PORT": "5055", "PUBLIC_URL": ""}, "http://127.0.0.1:5055"),
        ({"PORT": "5055", "PUBLIC_URL": "https://wa.example.com/"}, "https://wa.example.com"),
    ],
)
def test_the_public_url_follows_where_the_server_listens_unless_it_is_set(env, public_url):
    assert _config(**env)["PUBLIC_URL"] == public_url
