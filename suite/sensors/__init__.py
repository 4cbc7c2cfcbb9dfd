"""Sensors: one sampling loop per device emitting (t_s, channel, value) rows."""

from suite.sensors.local import LocalSampler, SamplerStats

__all__ = ["LocalSampler", "SamplerStats"]
