"""Request ids, and the one place that turns errors into responses."""

from blueprints.errors.handlers import register

__all__ = ["register"]
