"""schemathesis against a dialect's OpenAPI document, on the live server and context of
tests/test_openapi_fuzz.py (a paired session, an API key, media on loopback): zero failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests import test_openapi_fuzz
from tests.live import ROOT

# The native run's live server and context, for a dialect's test module to import.
live, context = test_openapi_fuzz.live, test_openapi_fuzz.context

PHASES = "examples,coverage,fuzzing,stateful"


def fuzz_dialect(context: dict, tmp_path: Path, document: str, config: str, examples: int = 15) -> dict:
    """One schemathesis run of the document at `document` (a path) with `config` (its
    credentials and operations' parameters); asserts it found nothing, returns its report."""
    config_path, report = tmp_path / "schemathesis.toml", tmp_path / "report.json"
    config_path.write_text(
        f'base-url = "{context["baseUrl"]}"\nhooks = "tests.openapi_fuzz_hooks"\nworkers = 2\n'
        f"request-timeout = 20\n\n{config}"
    )
    command = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config_path), "run"]
    command += [context["baseUrl"] + document, "--phases", PHASES, "--max-examples", str(examples)]
    command += ["--seed", os.environ.get("WAGATE_FUZZ_SEED", "20261123")]
    command += ["--report", "json", "--report-json-path", str(report)]
    started = time.monotonic()
    result = subprocess.run(
        command,
        cwd=tmp_path,
        env={**os.environ, "WAGATE_FUZZ_CONTEXT": json.dumps(context), "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    (tmp_path / "schemathesis.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, (
        f"schemathesis ({time.monotonic() - started:.0f} s; its whole output in {tmp_path / 'schemathesis.log'}):\n"
        f"{result.stdout[-30000:]}\n{result.stderr[-3000:]}"
    )
    outcome = json.loads(report.read_text())
    assert outcome["complete"] and outcome["exit_code"] == 0
    assert outcome["failures"] == [] and outcome["errors"] == []
    # Every documented operation but the document itself (schemathesis leaves out the URL it loaded).
    spec = requests.get(context["baseUrl"] + document, timeout=30).json()
    documented = sum(len(item) for item in spec["paths"].values()) - 1
    assert outcome["operations"] | {"total": documented, "tested": documented, "errored": 0} == outcome["operations"]
    # A document without links between its operations has no stateful phase to run.
    assert all(
        outcome["phases"][phase]["status"] == "success"
        or (outcome["phases"][phase]["skip_reason"] == "not_applicable" and phase == "stateful")
        for phase in PHASES.split(",")
    )
    return outcome
