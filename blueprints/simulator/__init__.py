"""The simulated phone (QR scans) and the simulator's fault switches."""

from flask import Blueprint

bp = Blueprint("simulator", __name__)

from blueprints.simulator import routes  # noqa: E402,F401
