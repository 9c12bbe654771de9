"""Business logic the routes, jobs and CLI commands call: `<entity>_<action>` functions."""
