"""Lab plans: which jobs to run on which phones, as one strictly validated TOML file.

    version = 1                  # required, must be 1
    name = "nightly"             # default: the file's stem
    output = "results"           # results folder (default "results"); relative to the plan's folder
    work_dir = ".edgebench-lab"  # controller state; default ".edgebench-lab/<name>" beside the plan

    [devices]                    # required
    select = ["all"]             # required: "all", serials, filters "tier=flagship", "tier=entry,soc=SM8650"
    adb = ["127.0.0.1:5037"]     # adb servers HOST:PORT; default: the default server
    exclude = []                 # serials to leave out

    [defaults]                   # values any [[jobs]] entry may override
    runtime = "ort-genai"        # ort-genai | llama.cpp (alias llama-bench) | llama-cpp-python
    runtime_bundle = "bundle"    # native runtimes: your own build, relative to the plan (llama.cpp's default:
                                 # edgebench's own; litert-lm, executorch and genie need one)
    tokenizer = "tokenizer.json" # executorch: the .pte's tokenizer, relative to the plan
    prompt_tokens = 128          # >= 1
    gen_tokens = 64              # >= 2
    reps = 5                     # >= 1
    warmup = 1                   # >= 0
    depth = 0                    # >= 0: tokens in the context before each measured phase (llama.cpp's -d)
    mmap = true                  # llama.cpp: map the weights (true) or read them into memory (false); default: its own
    repack = false               # llama.cpp: CPU weight repacking; default: its own (on)
    backend = "cpu"              # cpu | gpu | npu (gpu, npu: llama.cpp or litert-lm with your official bundle;
                                 # executorch and genie run where their model was built for)
    threads = 4                  # >= 1; default: the runtime's choice
    quant = "int4"               # int4/int8 (ort-genai), q4_0/q8_0 (llama.cpp, llama-cpp-python)
    seed = 0
    rate = 10.0                  # sensor sampling, Hz, > 0
    probe = false                # the roofline probe: slow, so off by default in a lab
    repetitions = 1              # each job is run this many times, each a job of its own
    idle = "5s"                  # idle-baseline sampling before each run (as `run --idle`); 0: none

    [gate]                       # optional: gates before each measured run
    cooldown_max_temp = 35.0     # °C, 0 < x < 120; absent: no cooldown gate
    cooldown_sensor = "battery"  # "battery" or "max" (the hottest sensor)
    cooldown_timeout = "10m"     # durations: 90, "90s", "10m", "1.5h"
    cooldown_delay = "0s"
    battery_floor = 50           # percent, 0..100; absent: no battery gate
    battery_wait = false         # wait for the floor (else the job is skipped)
    battery_timeout = "30m"

    [run]                        # optional
    retries = 1                  # extra attempts of a failed job, >= 0
    max_parallel_pushes = 2      # >= 1
    order = "plan"               # "plan" or "shuffle"
    shuffle_seed = 0             # with order = "shuffle" only
    lost_timeout = "10m"         # how long a disconnected phone's jobs wait for it

    [[jobs]]                     # at least one
    scenario = "burst"           # required: a registered scenario (suite.scenarios): burst | fit | sustained | voice
    models = ["smollm2-135m"]    # model card ids, or model_file = "m.gguf" (exactly one of the two): a .gguf,
                                 # .litertlm, .pte or a Genie config (genie_config.json), relative to the plan;
                                 # fit: the ladder (default: every reference card but the beyond-RAM rungs), no model_file
    runtimes = ["ort-genai"]     # default: [runtime]
    devices = ["tier=flagship"]  # narrows this job to the devices these selectors match
    beyond_ram = true            # fit only: walk past the phone's RAM (llama.cpp, weights mapped, no repacking)
    floor_tps = 1.0              # fit beyond_ram: stop after the first rung decoding slower than this
    rung_timeout = "15m"         # fit beyond_ram: the longest one rung's invocation may run
    duration = "2m"              # sustained only: duration or windows, exactly one
    windows = 20
    window_tokens = 64           # sustained only: tokens per generation
    min_window = "2s"            # sustained only: consecutive generations grouped into windows this long
    asr_models = ["whisper-tiny"]  # voice only (required): speech cards; one job per speech model x LLM
    turns = 3                    # voice only: consecutive turns measured
    audio_s = 5                  # voice only: the utterance, 5 or 30 s
    asr_quant = "f16"            # voice only: f16, q8_0 or q5_0
    audio_ctx = 0                # voice only: whisper's audio context in frames (0: the full 30 s window)
    # ... and any [defaults] key

Unknown keys and bad values are errors that name the file, line and key:
`plan.toml:12: [[jobs]] #2 scenario: unknown scenario 'brst' (burst, fit, sustained, voice)`.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from suite.catalog.cards import ModelCard, load_model_cards
from suite.core.errors import EdgebenchError, UnknownNameError
from suite.core.measure import BACKENDS
from suite.device.select import parse_filters
from suite.runtimes import RUNTIMES, backends, builds_own, get_runtime, is_native, measures_depth
from suite.scenarios import SCENARIOS
from suite.session.gating import SENSORS, Gate
from suite.transport import AdbServerAddress

PLAN_VERSION = 1
ORDERS = ("plan", "shuffle")
QUANTS = {"onnx": ("int4", "int8"), "gguf": ("q4_0", "q8_0"), "litertlm": ("int8", "f32")}
DEFAULT_WINDOW_TOKENS = 64  # suite.scenarios.sustained.DEFAULT_WINDOW_TOKENS (that module is slow to import)
MIN_WINDOW_S = 2.0  # suite.scenarios.sustained.MIN_WINDOW_S
#: the [defaults] keys (each a [[jobs]] key too) and their values when neither table gives one
PARAM_DEFAULTS: dict[str, Any] = {
    "runtime": "ort-genai", "runtime_bundle": None, "prompt_tokens": 128, "gen_tokens": 64, "reps": 5,
    "warmup": 1, "threads": None, "quant": None, "seed": 0, "rate": 10.0, "probe": False, "repetitions": 1,
    "idle": 5.0, "depth": 0, "backend": "cpu", "tokenizer": None, "mmap": None, "repack": None,
}
#: the params every job carries (sustained adds duration_s/windows/window_tokens/min_window_s, fit its ladder `models`: the
#: options of suite.scenarios' SustainedScenario and FitScenario, whose modules are slow to import)
RUN_PARAMS = ("prompt_tokens", "gen_tokens", "reps", "warmup", "threads", "quant", "seed", "rate", "probe")
SUSTAINED_KEYS = ("duration", "windows", "window_tokens", "min_window")
#: fit's walk past RAM (suite.scenarios.fit): only for scenario "fit"
FIT_KEYS = ("beyond_ram", "floor_tps", "rung_timeout")
#: the voice scenario's (suite.scenarios.voice): only for scenario "voice"
VOICE_KEYS = ("asr_models", "turns", "audio_s", "asr_quant", "audio_ctx")
ASR_QUANTS = ("f16", "q8_0", "q5_0")
TOP_KEYS = ("version", "name", "output", "work_dir", "devices", "defaults", "gate", "run", "jobs")
DEVICE_KEYS = ("select", "adb", "exclude")
GATE_KEYS = ("cooldown_max_temp", "cooldown_sensor", "cooldown_timeout", "cooldown_delay", "battery_floor",
             "battery_wait", "battery_timeout")
RUN_KEYS = ("retries", "max_parallel_pushes", "order", "shuffle_seed", "lost_timeout")
JOB_KEYS = ("scenario", "models", "model_file", "runtimes", "devices", *SUSTAINED_KEYS, *FIT_KEYS, *VOICE_KEYS,
            *PARAM_DEFAULTS)


class PlanError(EdgebenchError):
    """A plan that cannot run as written; `line` (1-based, None when unknown) and `key` say where."""

    exit_code = 2

    def __init__(self, message: str, *, file: str, line: int | None, key: str, hint: str | None = None) -> None:
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}", hint=hint, line=line, key=key)
        self.line = line
        self.key = key


def parse_duration(value: str | float) -> float:
    """`90`, `"90s"`, `"10m"`, `"1.5h"` -> seconds. ValueError on anything else, negatives included."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if math.isfinite(value) and value >= 0:
            return float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*([smh]?)", value.strip(), re.IGNORECASE)
        if m:
            return float(m[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[m[2].lower()]
    raise ValueError(f"bad duration {value!r}; use seconds or 90s, 10m, 1h")


# --- the records ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceSpec:
    select: tuple[str, ...]
    adb: tuple[AdbServerAddress, ...] = ()  # empty: the default server
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunSpec:
    retries: int = 1
    max_parallel_pushes: int = 2
    order: str = "plan"
    shuffle_seed: int | None = None
    lost_timeout_s: float = 600.0


@dataclass(frozen=True)
class JobSpec:
    """One job: one model (or model file) on one runtime, one repetition, on each selected device."""

    index: int  # of its [[jobs]] entry, 0-based
    model: str | None  # None: model_file, or fit (the ladder is params["models"])
    model_file: Path | None
    runtime: str
    scenario: str
    params: dict[str, Any] = field(hash=False)
    runtime_bundle: Path | None = None  # native runtimes only
    tokenizer: Path | None = None  # runtimes with a tokenizer input only (executorch)
    devices: tuple[str, ...] = ()  # selectors narrowing the plan's devices; () = all of them
    repetition: int = 0
    line: int = 0  # of its [[jobs]] header

    def identity(self) -> dict[str, Any]:
        """What defines the job, as canonical JSON data. Not the device, the model's digest or the
        runtime's version: the executor adds those. A model file is named by its file name only (its
        digest says what it holds; its folder is only where it lives); the bundle is the runtime version's."""
        return {
            "scenario": self.scenario, "runtime": self.runtime, "model": self.model,
            "model_file": self.model_file.name if self.model_file else None,
            "params": copy.deepcopy(self.params), "repetition": self.repetition,
        } | ({"tokenizer": self.tokenizer.name} if self.tokenizer else {})


def job_key(identity: Mapping[str, Any]) -> str:
    """A short stable key of an identity (16 hex chars of the SHA-256 of its canonical JSON)."""
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Plan:
    name: str
    path: Path
    output: Path
    work_dir: Path
    devices: DeviceSpec
    gate: Gate | None
    run: RunSpec
    jobs: tuple[JobSpec, ...]  # expanded: see expand()
    text_sha256: str

    def expand(self) -> list[JobSpec]:
        """Every job in plan order: per [[jobs]] entry, models x runtimes x repetitions (fit: runtimes x
        repetitions, the ladder in params). Load-time expansion, so errors surface at `lab validate`."""
        return list(self.jobs)

    def describe(self) -> str:
        """A few lines for `lab validate`: jobs, devices, output, gate, one line per [[jobs]] entry."""
        by_entry: dict[int, list[JobSpec]] = {}
        for j in self.jobs:
            by_entry.setdefault(j.index, []).append(j)
        dev = self.devices
        adb = f" via {', '.join(map(str, dev.adb))}" if dev.adb else ""
        excl = f", excluding {', '.join(dev.exclude)}" if dev.exclude else ""
        entries = _count(len(by_entry), "[[jobs]] entry", "[[jobs]] entries")
        lines = [f"plan {self.name!r} ({self.path}): {_count(len(self.jobs), 'job')} from {entries}",
                 f"devices: {', '.join(dev.select)}{adb}{excl}", f"output: {self.output}"]
        if (g := self.gate) is not None:
            parts = []
            if g.cooldown_max_temp_c is not None:
                parts.append(f"cooldown to {g.cooldown_max_temp_c:g} °C ({g.cooldown_sensor})")
            if g.battery_floor is not None:
                parts.append(f"battery >= {g.battery_floor:g}%")
            lines.append(f"gate: {', '.join(parts) or 'none'}")
        lines.append(f"run: order {self.run.order}, retries {self.run.retries}")
        for index, jobs in by_entry.items():
            lines.append(f"  [[jobs]] #{index + 1} (line {jobs[0].line}): {jobs[0].scenario}, "
                         f"{_count(len(jobs), 'job')}")
        return "\n".join(lines)


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


# --- where keys are ------------------------------------------------------------------------------

_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"\s*(\[\[?)\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_KEY_LINE = re.compile(rf"\s*({_DOTTED})\s*=")


def _key_parts(text: str) -> tuple[str, ...]:
    return tuple(json.loads(p) if p[0] == '"' else p.strip("'") for p in re.findall(_KEY, text))


class _Source:
    """The line of each header and key of a TOML text, by (array-table occurrence, absolute key path).

    A scan of the text, not a parser: tomllib has already checked the syntax, and keys inside inline
    tables are not found (their table's line is named instead)."""

    def __init__(self, name: str, text: str) -> None:
        self.name = name
        self._lines: dict[tuple[int | None, tuple[str, ...]], int] = {}
        seen: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        array: tuple[str, ...] = ()  # the [[array]] whose entry is open
        occ: int | None = None
        in_string: str | None = None
        for n, line in enumerate(text.splitlines(), 1):
            if in_string:
                in_string = None if line.count(in_string) % 2 else in_string
                continue
            if h := _HEADER.match(line):
                path = _key_parts(h[2])
                if h[1] == "[[":
                    array, occ = path, seen.get(path, -1) + 1
                    seen[path] = occ
                elif not (array and path[:len(array)] == array):
                    array, occ = (), None  # a sub-table of the open [[array]] entry keeps its occurrence
                table = path
                self._lines.setdefault((occ, path), n)
            elif k := _KEY_LINE.match(line):
                self._lines.setdefault((occ, table + _key_parts(k[1])), n)
            in_string = next((q for q in ('"""', "'''") if line.count(q) % 2), None)

    def line(self, path: tuple[str, ...], occ: int | None = None) -> int | None:
        """The line of `path` or, when not found, of its nearest enclosing table."""
        for o in dict.fromkeys((occ, None)):
            for n in range(len(path), 0, -1):
                if (hit := self._lines.get((o, path[:n]))) is not None:
                    return hit
        return None


# --- values --------------------------------------------------------------------------------------

Conv = Callable[[Any], Any]


def _got(v: Any) -> str:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "a table"}.get(type(v), type(v).__name__)
    return f"got {kind}" if isinstance(v, dict) else f"got {kind} {v!r}"


def _int(lo: int | None = None) -> Conv:
    def conv(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"expected an integer, {_got(v)}")
        if lo is not None and v < lo:
            raise ValueError(f"must be >= {lo}, got {v}")
        return v
    return conv


def _number(lo: float, hi: float | None = None, *, exclusive: bool = False) -> Conv:
    def conv(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise TypeError(f"expected a number, {_got(v)}")
        x = float(v)
        low, high = (x <= lo, hi is not None and x >= hi) if exclusive else (x < lo, hi is not None and x > hi)
        if low or high or math.isnan(x):
            rng = f"between {lo:g} and {hi:g}" if hi is not None else f"{'>' if exclusive else '>='} {lo:g}"
            raise ValueError(f"must be {rng}{' (exclusive)' if exclusive and hi is not None else ''}, got {v}")
        return x
    return conv


def _str(choices: Sequence[str] | None = None, what: str = "value") -> Conv:
    def conv(v: Any) -> str:
        if not isinstance(v, str) or not v.strip():
            raise TypeError(f"expected a non-empty string, {_got(v)}")
        if choices is not None and v not in choices:
            raise ValueError(f"unknown {what} {v!r} ({', '.join(choices)})")
        return v
    return conv


def _runtime(v: Any) -> str:
    """A registered runtime's name (an alias such as `llama-bench` becomes the name it stands for,
    so jobs, resume keys and stored runs all say the same)."""
    name = _str()(v)
    if name not in RUNTIMES:
        raise ValueError(f"unknown runtime {name!r} ({RUNTIMES.describe()})")
    return RUNTIMES.check(name)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"expected true or false, {_got(v)}")
    return v


def _strs(*, nonempty: bool = True, each: Conv | None = None) -> Conv:
    def conv(v: Any) -> tuple:
        if not isinstance(v, list):
            raise TypeError(f"expected an array of strings, {_got(v)}")
        if nonempty and not v:
            raise ValueError("must not be empty")
        items = [_str()(x) for x in v]
        return tuple(dict.fromkeys(each(x) if each else x for x in items))
    return conv


def _duration(*, positive: bool = False) -> Conv:
    def conv(v: Any) -> float:
        s = parse_duration(v)
        if positive and s <= 0:
            raise ValueError(f"must be positive, got {v!r}")
        return s
    return conv


def _selector(s: str) -> str:
    if "=" in s:
        parse_filters(s)  # raises EdgebenchError naming the bad part
    return s


def _server(s: str) -> AdbServerAddress:
    addr = AdbServerAddress.parse(s)
    if not 0 < addr.port < 65536:
        raise ValueError(f"bad adb server address {s!r}: port out of range")
    return addr


def _path(base: Path, *, folder: bool) -> Conv:
    def conv(v: Any) -> Path:
        p = base / Path(_str()(v)).expanduser()
        if not (p.is_dir() if folder else p.exists()):
            raise ValueError(f"no {'folder' if folder else 'file'} {str(p)!r}")
        return p
    return conv


def _format(runtime: str) -> str:
    return get_runtime(runtime).formats[0]


def _native(runtime: str) -> bool:
    return is_native(get_runtime(runtime))


def _model_id(cards: Mapping[str, ModelCard]) -> Conv:
    def conv(v: str) -> str:
        if v not in cards:
            raise UnknownNameError("model", v, cards)
        return v
    return conv


@dataclass
class _Table:
    """One TOML table under validation: getters that fail naming the key's line."""

    src: _Source
    data: dict[str, Any]
    path: tuple[str, ...] = ()
    occ: int | None = None
    label: str = ""

    def fail(self, key: str | None, message: str, hint: str | None = None) -> NoReturn:
        line = self.src.line((*self.path, key) if key else self.path, self.occ)
        raise PlanError(message, file=self.src.name, line=line, hint=hint,
                        key=" ".join(p for p in (self.label, key) if p))

    def check_keys(self, allowed: Sequence[str]) -> None:
        for key in self.data:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
                self.fail(key, f"unknown key {key!r} (known: {', '.join(allowed)})",
                          f"did you mean {close[0]}?" if close else None)

    def get(self, key: str, conv: Conv, default: Any = None) -> Any:
        if key not in self.data:
            return default
        try:
            return conv(self.data[key])
        except EdgebenchError as exc:
            self.fail(key, exc.message, exc.hint)
        except (TypeError, ValueError) as exc:
            self.fail(key, str(exc))

    def require(self, key: str, conv: Conv, what: str = "required") -> Any:
        if key not in self.data:
            self.fail(key, what)
        return self.get(key, conv)

    def table(self, key: str) -> _Table:
        """The sub-table `key` ({} when absent)."""
        v = self.data.get(key, {})
        if not isinstance(v, dict):
            self.fail(key, f"expected a table [{key}], {_got(v)}")
        return _Table(self.src, v, (*self.path, key), None, f"[{key}]")


# --- loading -------------------------------------------------------------------------------------


def load_plan(path: str | Path) -> Plan:
    """Read and validate a plan; PlanError (exit code 2) at the first problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise PlanError(f"cannot read the plan: {exc.strerror}", file=str(path), line=None, key="") from None
    except UnicodeDecodeError as exc:
        raise PlanError(f"not UTF-8 text ({exc.reason})", file=path.name, line=None, key="") from None
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"at line (\d+)", str(exc))
        raise PlanError(f"TOML syntax: {exc}", file=path.name, line=int(m[1]) if m else None, key="",
                        hint="see https://toml.io/en/v1.0.0") from None
    src = _Source(path.name, text)
    root = _Table(src, data)
    root.check_keys(TOP_KEYS)
    if (version := root.require("version", _int(), f"required: version = {PLAN_VERSION}")) != PLAN_VERSION:
        root.fail("version", f"unsupported plan version {version}; this edgebench reads version {PLAN_VERSION}")
    base = path.resolve().parent
    name = root.get("name", _str(), path.stem)
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        root.fail("name", f"{name!r}: use letters, digits, '.', '_' and '-' (it names a folder)")

    if "devices" not in data:
        root.fail("devices", 'required: a [devices] table with select = ["all"] or selectors')
    dev = root.table("devices")
    dev.check_keys(DEVICE_KEYS)
    devices = DeviceSpec(select=dev.require("select", _strs(each=_selector)),
                         adb=dev.get("adb", _strs(nonempty=False, each=_server), ()),
                         exclude=dev.get("exclude", _strs(nonempty=False), ()))
    jobs = tuple(_jobs(root, base))
    return Plan(name=name, path=path.resolve(), output=base / Path(root.get("output", _str(), "results")).expanduser(),
                work_dir=base / Path(root.get("work_dir", _str(), f".edgebench-lab/{name}")).expanduser(),
                devices=devices, gate=_gate(root.table("gate")) if "gate" in data else None,
                run=_run(root.table("run")), jobs=jobs, text_sha256=hashlib.sha256(raw).hexdigest())


def _gate(g: _Table) -> Gate:
    g.check_keys(GATE_KEYS)
    d = Gate()
    return Gate(cooldown_max_temp_c=g.get("cooldown_max_temp", _number(0, 120, exclusive=True)),
                cooldown_sensor=g.get("cooldown_sensor", _str(SENSORS, "cooldown sensor"), d.cooldown_sensor),
                cooldown_timeout_s=g.get("cooldown_timeout", _duration(), d.cooldown_timeout_s),
                cooldown_delay_s=g.get("cooldown_delay", _duration(), d.cooldown_delay_s),
                battery_floor=g.get("battery_floor", _number(0, 100)),
                battery_wait=g.get("battery_wait", _bool, d.battery_wait),
                battery_timeout_s=g.get("battery_timeout", _duration(), d.battery_timeout_s))


def _run(r: _Table) -> RunSpec:
    r.check_keys(RUN_KEYS)
    d = RunSpec()
    order = r.get("order", _str(ORDERS, "order"), d.order)
    if "shuffle_seed" in r.data and order != "shuffle":
        r.fail("shuffle_seed", 'only applies with order = "shuffle"')
    return RunSpec(retries=r.get("retries", _int(0), d.retries),
                   max_parallel_pushes=r.get("max_parallel_pushes", _int(1), d.max_parallel_pushes),
                   order=order, shuffle_seed=r.get("shuffle_seed", _int()),
                   lost_timeout_s=r.get("lost_timeout", _duration(positive=True), d.lost_timeout_s))


def _jobs(root: _Table, base: Path) -> list[JobSpec]:
    entries = root.data.get("jobs")
    if not entries:
        root.fail("jobs", "required: at least one [[jobs]] entry")
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        root.fail("jobs", "expected [[jobs]] entries (an array of tables)")
    convs: dict[str, Conv] = {
        "runtime": _runtime, "runtime_bundle": _path(base, folder=True),
        "prompt_tokens": _int(1), "gen_tokens": _int(2), "reps": _int(1), "warmup": _int(0), "threads": _int(1),
        "quant": _str([q for qs in QUANTS.values() for q in qs], "quant"), "seed": _int(),
        "rate": _number(0, exclusive=True), "probe": _bool, "repetitions": _int(1), "idle": _duration(),
        "depth": _int(0), "backend": _str(BACKENDS, "backend"), "tokenizer": _path(base, folder=False),
        "mmap": _bool, "repack": _bool,
    }
    defaults = root.table("defaults")
    defaults.check_keys(tuple(PARAM_DEFAULTS))
    for key in defaults.data:
        defaults.get(key, convs[key])
    cards = load_model_cards()
    out: list[JobSpec] = []
    for i, entry in enumerate(entries):
        job = _Table(root.src, entry, ("jobs",), i, f"[[jobs]] #{i + 1}")
        out += _expand(job, defaults, convs, cards, base)
    return out


def _expand(job: _Table, defaults: _Table, convs: Mapping[str, Conv], cards: Mapping[str, ModelCard],
            base: Path) -> list[JobSpec]:
    """One [[jobs]] entry, validated, as its jobs."""
    job.check_keys(JOB_KEYS)
    scenario = job.require("scenario", _str(SCENARIOS.names(), "scenario"),
                           f"required: one of {', '.join(SCENARIOS.names())}")
    for key in SUSTAINED_KEYS:
        if key in job.data and scenario != "sustained":
            job.fail(key, f"only for scenario 'sustained', not {scenario!r}")
    for key in FIT_KEYS:
        if key in job.data and scenario != "fit":
            job.fail(key, f"only for scenario 'fit', not {scenario!r}")
    for key in VOICE_KEYS:
        if key in job.data and scenario != "voice":
            job.fail(key, f"only for scenario 'voice', not {scenario!r}")
    source = {k: job if k in job.data else defaults for k in PARAM_DEFAULTS}  # who gave each value
    values = {k: source[k].get(k, convs[k], default) for k, default in PARAM_DEFAULTS.items()}

    if "runtime" in job.data and "runtimes" in job.data:
        job.fail("runtimes", "give runtime or runtimes, not both")
    given = "runtime" in job.data or "runtime" in defaults.data
    runtimes = job.get("runtimes", _strs(each=convs["runtime"])) or (
        ("llama.cpp",) if scenario == "voice" and not given else (values["runtime"],))  # voice replies on llama.cpp
    native = [rt for rt in runtimes if _native(rt)]
    needs_bundle = [rt for rt in native if not builds_own(get_runtime(rt))]
    if needs_bundle and values["runtime_bundle"] is None:
        rt = get_runtime(needs_bundle[0])
        job.fail("runtime_bundle", f"required for the {rt.name} runtime: a folder with {rt.bundle_layout}",
                 hint=f"set runtime_bundle in [defaults] or in the job; {rt.bundle_hint}")
    if "runtime_bundle" in job.data and not native:
        job.fail("runtime_bundle", "only for native runtimes (" + ", ".join(
            n for n in RUNTIMES.names() if _native(n)) + ")")
    quant = values["quant"]
    for rt in runtimes:
        if quant is not None and quant not in (known := QUANTS.get(_format(rt), ())):
            within = "" if source["quant"] is job else f" (in {job.label})"
            source["quant"].fail("quant", f"{quant!r} is not a quant of {rt} ({', '.join(known)}){within}")

    params = {k: values[k] for k in RUN_PARAMS} | {"idle_s": values["idle"]}
    if values["depth"]:  # only when set: the keys of jobs at an empty context stay what they were
        flat = [rt for rt in runtimes if not measures_depth(get_runtime(rt))]
        if flat:
            source["depth"].fail("depth", f"measures at a filled context with llama-bench's -d; {flat[0]} has no "
                                 "such mode (runtime = \"llama.cpp\")")
        params["depth"] = values["depth"]
    if values["backend"] != "cpu":  # likewise: CPU jobs keep their keys
        off = [rt for rt in runtimes if values["backend"] not in backends(get_runtime(rt))]
        if off:
            source["backend"].fail("backend", f"{off[0]} runs on {', '.join(backends(get_runtime(off[0])))} only "
                                   "(runtime = \"llama.cpp\" or \"litert-lm\" with your official runtime_bundle)")
        params["backend"] = values["backend"]
    models: tuple[str | None, ...] = (None,)
    model_file = None
    if scenario == "fit":
        if "model_file" in job.data:
            job.fail("model_file", "fit walks the reference model ladder: give models = [...] or none")
        ladder = job.get("models", _strs(each=_model_id(cards))) or [c.id for c in cards.values() if c.in_default_ladder]
        params["models"] = sorted(ladder, key=lambda m: cards[m].params())
    else:
        if ("models" in job.data) == ("model_file" in job.data):
            job.fail("model_file" if "models" in job.data else "models",
                     'give exactly one of models = ["id", ...] or model_file = "path"')
        models = job.get("models", _strs(each=_model_id(cards))) or (None,)
        model_file = job.get("model_file", _path(base, folder=False))
    own = [rt for rt in runtimes if _format(rt) not in QUANTS]  # runtimes of a user's artefact, never a card
    if own and model_file is None:
        job.fail("models" if "models" in job.data else "runtimes",
                 f"{own[0]} runs your own model ({_format(own[0])}): give model_file = \"path\"")
    takers = [rt for rt in runtimes if "tokenizer" in getattr(get_runtime(rt), "inputs", ())]
    if takers and values["tokenizer"] is None:
        job.fail("tokenizer", f"required for the {takers[0]} runtime: the model's tokenizer file",
                 hint="set tokenizer in [defaults] or in the job")
    if "tokenizer" in job.data and len(takers) < len(runtimes):
        job.fail("tokenizer", "only for runtimes that take one (executorch)")
    for key in ("mmap", "repack"):  # llama.cpp's load options: only when set (other jobs keep their keys)
        if values[key] is not None:
            off = [rt for rt in runtimes if not getattr(get_runtime(rt), "load_options", False)]
            if off:
                source[key].fail(key, f"a load option of llama.cpp; {off[0]} has none")
            params[key] = values[key]
    if scenario == "fit" and job.get("beyond_ram", _bool, False):
        off = [rt for rt in runtimes if get_runtime(rt).name != "llama.cpp"]
        if off:
            job.fail("beyond_ram", f"the walk past RAM runs llama.cpp (it maps GGUF weights from storage), not {off[0]}")
        if values["mmap"] is False or values["repack"] is True:
            job.fail("beyond_ram", "maps the weights and turns repacking off: mmap = false or repack = true "
                                   "contradict it")
        params.update(beyond_ram=True, floor_tps=job.get("floor_tps", _number(0), 1.0),
                      rung_timeout_s=job.get("rung_timeout", _duration(positive=True), 15 * 60.0))
    elif any(k in job.data for k in ("floor_tps", "rung_timeout")):
        job.fail("floor_tps" if "floor_tps" in job.data else "rung_timeout", "only with beyond_ram = true")
    if scenario == "sustained":
        duration, windows = job.get("duration", _duration(positive=True)), job.get("windows", _int(1))
        if (duration is None) == (windows is None):
            job.fail("windows" if duration is not None else "duration",
                     "sustained takes duration or windows, not both" if duration is not None
                     else 'sustained needs duration = "2m" or windows = N')
        params.update(duration_s=duration, windows=windows,
                      window_tokens=job.get("window_tokens", _int(2), DEFAULT_WINDOW_TOKENS),
                      min_window_s=job.get("min_window", _duration(), MIN_WINDOW_S))
    speech: tuple[dict, ...] = ({},)
    if scenario == "voice":
        speech = _voice_params(job, runtimes, model_file)

    selectors = job.get("devices", _strs(each=_selector), ())
    line = job.src.line(("jobs",), job.occ) or 0
    bundle = values["runtime_bundle"]
    return [JobSpec(index=job.occ or 0, model=m, model_file=model_file, runtime=rt, scenario=scenario,
                    params=copy.deepcopy(params) | sp, runtime_bundle=bundle if _native(rt) else None,
                    tokenizer=values["tokenizer"] if "tokenizer" in getattr(get_runtime(rt), "inputs", ()) else None,
                    devices=selectors, repetition=rep, line=line)
            for m in models for sp in speech for rt in runtimes for rep in range(values["repetitions"])]


def _voice_params(job, runtimes, model_file) -> tuple[dict, ...]:
    """The voice scenario's params, one set per speech model (the matrix is device x speech model x LLM)."""
    from suite.catalog.speech import load_speech_cards  # the speech cards: TOML only

    off = [rt for rt in runtimes if get_runtime(rt).name != "llama.cpp"]
    if off:
        job.fail("runtimes", f"the voice scenario replies with llama.cpp beside the whisper.cpp driver, not {off[0]}")
    if model_file is not None:
        job.fail("model_file", "the voice scenario runs reference cards: give models = [...]")
    if "runtime_bundle" in job.data:
        job.fail("runtime_bundle", "the voice scenario runs edgebench's own builds")
    speech = load_speech_cards()
    asr = job.get("asr_models", _strs(each=_model_id(speech)))
    if not asr:
        job.fail("asr_models", 'the voice scenario needs asr_models = ["whisper-tiny", ...] (speech cards)')
    quant = job.get("asr_quant", _str(ASR_QUANTS, "speech quant"), "f16")
    audio_s = job.get("audio_s", _int(1), 5)
    if audio_s not in (5, 30):
        job.fail("audio_s", f"{audio_s}: the utterance is 5 or 30 s")
    common = {"turns": job.get("turns", _int(1), 3), "audio_s": audio_s, "asr_quant": quant,
              "audio_ctx": job.get("audio_ctx", _int(0), 0)}
    return tuple({"asr_model": a, **common} for a in asr)
