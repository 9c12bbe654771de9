"""schemathesis hooks for the aulm run in tests/test_dialect_aulm_live.py: the native run's
(tests/openapi_fuzz_hooks.py: real phone numbers, real media on loopback), and a send's
`session_id` is the run's paired session, so that valid data is really valid."""

from __future__ import annotations

import schemathesis

from tests import openapi_fuzz_hooks  # noqa: F401  (registers the native run's hooks and formats)
from tests.openapi_fuzz_hooks import CONTEXT


@schemathesis.hook
def before_call(context, case, kwargs):
    if isinstance(case.body, dict) and isinstance(case.body.get("session_id"), str):
        case.body["session_id"] = CONTEXT["session"]
