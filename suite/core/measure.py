"""The typed parts of a measurement that every layer shares: what a burst asks for
(`BurstParams`) and what a runtime reports (`Repetition`s inside a `BurstResult`), as raw
monotonic timestamps; analysis turns them into metrics."""

from __future__ import annotations

from dataclasses import dataclass, field

#: where a model can run: the CPU, the GPU (OpenCL, Vulkan), the NPU (Hexagon and other accelerators)
BACKENDS = ("cpu", "gpu", "npu")


@dataclass(frozen=True)
class BurstParams:
    """The burst scenario: prefill `prompt_tokens` in one batch, then decode `gen_tokens`.

    `depth`: tokens already in the context before each measured phase (llama-bench's `-d`: a chat's
    history), so prefill and decode are measured at a filled context; 0 = an empty one.
    `backend`: where the model runs, `cpu` | `gpu` | `npu` (BACKENDS; a runtime lists the ones it can)."""

    prompt_tokens: int = 128
    gen_tokens: int = 64
    reps: int = 5
    warmup: int = 1
    threads: int | None = None
    seed: int = 0
    depth: int = 0
    backend: str = "cpu"
    #: how the weights are loaded, where the runtime lets edgebench say (llama.cpp): True maps the model
    #: file (its pages can be evicted and read again: a model larger than RAM can run), False reads it into
    #: memory; None: the runtime's default
    mmap: bool | None = None
    #: llama.cpp's CPU weight repacking (copies Q4_0/Q8_0 weights into anonymous buffers on arm64 builds with
    #: dotprod/i8mm: they cannot page); False turns it off; None: the runtime's default (on)
    repack: bool | None = None
    #: analysis only (never stored): whether decode continues after the measured prompt (in process)
    #: or runs on its own from `depth` (llama-bench's separate `-p 0 -n N` test)
    decode_after_prompt: bool = True

    def __post_init__(self) -> None:
        if self.prompt_tokens < 1:
            raise ValueError("prompt_tokens must be >= 1")
        if self.gen_tokens < 2:
            raise ValueError("gen_tokens must be >= 2 (the first token only samples the prefill)")
        if self.reps < 1:
            raise ValueError("reps must be >= 1")
        if self.warmup < 0:
            raise ValueError("warmup must be >= 0")
        if self.threads is not None and self.threads < 1:
            raise ValueError("threads must be >= 1")
        if self.depth < 0:
            raise ValueError("depth must be >= 0")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {self.backend!r}")

    @property
    def decode_context_start(self) -> int:
        """The KV position the first timed decode step attends from."""
        return self.depth + (self.prompt_tokens if self.decode_after_prompt else 0)

    def to_dict(self) -> dict:
        """The stored parameters (`depth` and `backend` only when set: runs at an empty context on the CPU
        keep the key they had)."""
        out = {
            "prompt_tokens": self.prompt_tokens,
            "gen_tokens": self.gen_tokens,
            "reps": self.reps,
            "warmup": self.warmup,
            "threads": self.threads,
            "seed": self.seed,
        }
        return (out | ({"depth": self.depth} if self.depth else {})
                | ({"backend": self.backend} if self.backend != "cpu" else {})
                | ({"mmap": self.mmap} if self.mmap is not None else {})
                | ({"repack": self.repack} if self.repack is not None else {}))


@dataclass
class Repetition:
    """One generation: monotonic timestamps (seconds) around the runtime's calls."""

    warmup: bool
    t_start: float
    t_prefill_end: float
    t_first_token: float
    token_times: list[float] = field(default_factory=list)  # end of each decode step

    @property
    def prefill_s(self) -> float:
        return self.t_prefill_end - self.t_start

    @property
    def ttft_s(self) -> float:
        return self.t_first_token - self.t_start

    @property
    def decode_latencies_s(self) -> list[float]:
        edges = [self.t_first_token, *self.token_times]
        return [b - a for a, b in zip(edges, edges[1:], strict=False)]

    @property
    def t_end(self) -> float:
        return self.token_times[-1] if self.token_times else self.t_first_token


@dataclass
class BurstResult:
    t_load_start: float
    t_load_end: float
    repetitions: list[Repetition]
    info: dict  # name, version, backend, threads, affinity

    @property
    def load_s(self) -> float:
        return self.t_load_end - self.t_load_start
