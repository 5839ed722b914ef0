"""The engine state behind one locking façade (``facade.EngineState``)."""

from alert_engine.pipeline.state.facade import EngineState
from alert_engine.pipeline.state.listing import ListingRead
from alert_engine.pipeline.state.stores import Stores

__all__ = ["EngineState", "ListingRead", "Stores"]
