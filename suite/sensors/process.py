"""The local sampler in a child process, for runtimes that hold the GIL.

onnxruntime-genai's Python binding holds the GIL inside `append_tokens` (a whole prefill:
seconds on a big model), so a sampler thread in the same process would record nothing
during the phase it is meant to watch. The child process samples the parent by pid on
the same CLOCK_MONOTONIC and hands everything back when stopped.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
from types import TracebackType

from suite.sensors.local import LocalSampler, SamplerStats

_START_TIMEOUT_S = 60.0


def _child(conn, pid: int, rate_hz: float, sampler_kwargs: dict) -> None:
    # Ctrl-C reaches the whole process group: the parent decides when sampling stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sampler = LocalSampler(pid=pid, rate_hz=rate_hz, **sampler_kwargs)
    sampler.t0 = 0.0  # rows keep absolute monotonic time; the parent subtracts its t0
    sampler.start()
    conn.send(("started", sampler.availability()))
    conn.recv()  # any message means stop
    stats = sampler.stop()
    conn.send(
        (
            "stopped",
            {
                "rows": sampler.rows,
                "availability": sampler.availability(),
                "peak_rss_bytes": sampler.peak_rss_bytes,
                "power_source": sampler.power_source,
                "notes": sampler.notes,
                "stats": stats,
            },
        )
    )
    conn.close()


class ProcessSampler:
    """Same surface as LocalSampler (rows, availability, peak_rss_bytes, notes, power_source)."""

    def __init__(self, pid: int | None = None, rate_hz: float = 10.0, **sampler_kwargs) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.pid = os.getpid() if pid is None else pid
        self.rate_hz = rate_hz
        self.t0: float | None = None
        self._kwargs = sampler_kwargs
        self._proc = None
        self._conn = None
        self._availability: dict[str, str | None] | None = None
        self._result: dict | None = None

    def start(self) -> ProcessSampler:
        ctx = mp.get_context("spawn")  # no fork of a process that may hold runtime threads
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(child, self.pid, self.rate_hz, self._kwargs),
                                 name="edgebench-sampler", daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(_START_TIMEOUT_S):
            self._kill()
            raise RuntimeError("the sampler process did not start")
        _, self._availability = parent.recv()
        return self

    def stop(self) -> SamplerStats | None:
        if self._proc is None:
            raise RuntimeError("sampler not started")
        if self._result is None:
            try:
                self._conn.send("stop")
                if self._conn.poll(_START_TIMEOUT_S):
                    _, self._result = self._conn.recv()
            except (BrokenPipeError, EOFError, OSError):
                self._result = None
            finally:
                self._proc.join(5)
                self._kill()
        return self.stats

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join()

    def __enter__(self) -> ProcessSampler:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None:
            self.stop()

    # --- results, as LocalSampler -------------------------------------------------------

    def availability(self) -> dict[str, str | None]:
        if self._result is not None:
            return dict(self._result["availability"])
        if self._availability is None:
            return LocalSampler(pid=self.pid, rate_hz=self.rate_hz, **self._kwargs).availability()
        return dict(self._availability)

    @property
    def rows(self) -> list[tuple[float, str, float]]:
        if not self._result:
            return []
        t0 = self.t0 if self.t0 is not None else 0.0
        return [(t - t0, ch, v) for t, ch, v in self._result["rows"]]

    @property
    def peak_rss_bytes(self) -> int | None:
        return self._result["peak_rss_bytes"] if self._result else None

    @property
    def power_source(self) -> str | None:
        return self._result["power_source"] if self._result else None

    @property
    def notes(self) -> dict:
        out = dict(self._result["notes"]) if self._result else {"rate_hz": self.rate_hz}
        out["process"] = "child process sampling the runtime by pid"
        return out

    @property
    def stats(self) -> SamplerStats | None:
        return self._result["stats"] if self._result else None
