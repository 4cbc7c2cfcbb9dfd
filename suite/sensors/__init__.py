"""Sensors: one sampling loop per device emitting (t_s, channel, value) rows, power sources, the
roofline probes. The package imports nothing itself: the device-side runner imports `probe` on a
phone whose Python may lack the host's packages (psutil, pandas)."""
