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

ENGINE_NAMES = ("simulator",)


def engine_create(name: str, listener: EngineListener, settings: EngineSettings, **options) -> Engine:
    """Build the engine called `name`; unknown names are a configuration error."""
    if name == "simulator":
        from engines.simulator import SimulatorEngine

        return SimulatorEngine(listener, settings, **options)
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
