"""WhatsApp engines behind one interface, selected with WA_ENGINE."""

from engines.base import (
    Engine,
    EngineError,
    EngineEvent,
    EngineEventKind,
    EngineListener,
    EngineSettings,
    SendResult,
)

ENGINE_NAMES = ("simulator", "neonize")


def engine_create(name: str, listener: EngineListener, settings: EngineSettings, **options) -> Engine:
    """Build the engine called `name`; unknown names are a configuration error."""
    if name == "simulator":
        from engines.simulator import SimulatorEngine

        return SimulatorEngine(listener, settings, **options)
    if name == "neonize":
        # Imported here, never at module level: loading neonize starts Go in the process,
        # which only the engine host may carry (web and forking workers must not).
        from engines.neonize.engine import NeonizeEngine

        return NeonizeEngine(listener, settings, **options)
    raise ValueError(f"Unknown WA_ENGINE {name!r}; choose one of: {', '.join(ENGINE_NAMES)}")


__all__ = [
    "ENGINE_NAMES",
    "Engine",
    "EngineError",
    "EngineEvent",
    "EngineEventKind",
    "EngineListener",
    "EngineSettings",
    "SendResult",
    "engine_create",
]
