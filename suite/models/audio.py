"""The speech ladder's input: a seeded synthetic utterance, a 16 kHz mono 16-bit PCM WAV file.

Speech-like, not speech: syllables of a few harmonics of a gliding pitch (90-160 Hz), shaped by the
formants of five vowels, with attack/release envelopes, short noise bursts at some onsets (consonants),
pauses, and a faint noise floor. What a speech recogniser's cost depends on (length, sample rate, a
spectrum with energy where speech has it, silences) is there; words are not: with the reference models'
random weights no transcript means anything anyway.

Integer-exact: every step is integer arithmetic on a PCG64 stream's raw 64-bit outputs (sines from a
parabolic approximation, no floating point, no libm), so the file's sha256 is the same on every host
and numpy version. Written atomically, cached under `<cache>/audio/utterance-{seconds}s-seed{seed}.wav`
(`<cache>` is `default_models_dir().parent`: $EDGEBENCH_CACHE_DIR, else ~/.cache/edgebench).
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from suite.core.errors import EdgebenchError
from suite.models.artifact import default_models_dir

SAMPLE_RATE = 16000
#: the documented lengths (a short command, a whole 30 s Whisper window); any whole 1..30 s is accepted
LENGTHS_S = (5, 30)
MAX_SECONDS = 30
SOURCE = "synthetic: seeded waveform, deterministic on any host"
#: (F1, F2, F3) in Hz of the vowels a, e, i, o, u (adult speaker, rounded textbook values)
VOWELS = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240))
FORMANT_GAIN = (4, 3, 1)
FORMANT_HALF_WIDTH_HZ = (120, 180, 250)
MAX_HARMONIC_HZ = 6000
N_HARMONICS = 60


@dataclass(frozen=True)
class Utterance:
    """A WAV file edgebench made, and what the run record says about it."""

    path: Path
    sha256: str
    seconds: int
    sample_rate: int
    samples: int
    seed: int
    source: str = SOURCE

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "sha256": self.sha256, "seconds": self.seconds,
                "sample_rate": self.sample_rate, "samples": self.samples, "seed": self.seed, "source": self.source}


def audio_dir() -> Path:
    """`<cache>/audio`, beside the built models' folder."""
    return default_models_dir().parent / "audio"


class _Stream:
    """Integers from a PCG64 stream's raw outputs only (Generator methods may change between numpy
    versions; the bit generator's raw stream does not)."""

    def __init__(self, seed: int) -> None:
        words = np.frombuffer(hashlib.sha256(b"edgebench/utterance").digest()[:16], dtype="<u4").tolist()
        self._bits = np.random.PCG64(np.random.SeedSequence([seed, *words]))

    def raw(self, n: int) -> np.ndarray:
        return self._bits.random_raw(n).astype(np.uint64)

    def below(self, bound: int) -> int:
        """One integer in [0, bound) (the top 32 bits, reduced: a bias of under 1e-6 here)."""
        return int(self.raw(1)[0] >> np.uint64(32)) % bound

    def noise(self, n: int) -> np.ndarray:
        """n integers uniform in [-32768, 32767]."""
        return (self.raw(n) >> np.uint64(48)).astype(np.int64) - 32768


def _sin_q15(phase: np.ndarray) -> np.ndarray:
    """sin(2 pi phase / 2^32) x 32768 in integers: Bhaskara-style parabola plus one correction step
    (error under 0.2% of full scale)."""
    s = (phase >> 16) & 0xFFFF
    s = np.where(s >= 32768, s - 65536, s)  # the angle in [-pi, pi) as 16-bit
    y = (s * (32768 - np.abs(s))) // 8192  # 4 x (1 - x) parabola, Q15
    return y + (225 * ((y * np.abs(y)) // 32768 - y)) // 1000


def _segments(n: int, rng: _Stream) -> list[tuple[str, int, int, int, int]]:
    """(kind, start, end, pitch in centi-Hz, vowel) for syllables and pauses covering n samples."""
    out, t = [], SAMPLE_RATE // 10  # a 100 ms lead-in of silence, as recordings have
    while t < n:
        if out and out[-1][0] == "syllable" and rng.below(100) < 18:
            length = SAMPLE_RATE * (80 + rng.below(220)) // 1000
            out.append(("pause", t, min(n, t + length), 0, 0))
        else:
            length = SAMPLE_RATE * (120 + rng.below(160)) // 1000
            out.append(("syllable", t, min(n, t + length), 9000 + rng.below(7000), rng.below(len(VOWELS))))
        t += length
    return out


def synthesize(seconds: int, seed: int = 0) -> np.ndarray:
    """The utterance's samples: int16, SAMPLE_RATE per second, integer arithmetic only."""
    n = seconds * SAMPLE_RATE
    rng = _Stream(seed)
    env = np.zeros(n, dtype=np.int64)  # 0..4096
    f0 = np.full(n, 12000, dtype=np.int64)  # centi-Hz
    vowel = np.zeros(n, dtype=np.int64)
    burst = np.zeros(n, dtype=np.int64)  # consonant noise, 0..4096
    syllables = [s for s in _segments(n, rng) if s[0] == "syllable"]
    attack, release = SAMPLE_RATE * 25 // 1000, SAMPLE_RATE * 60 // 1000
    for i, (_, a, b, pitch, v) in enumerate(syllables):
        length = b - a
        idx = np.arange(length, dtype=np.int64)
        level = 2600 + rng.below(1497)
        shape = np.minimum(np.minimum(idx * 4096 // attack, (length - idx) * 4096 // release), 4096)
        env[a:b] = shape * level // 4096
        # the pitch glides to the next syllable's (intonation), falling a little within each
        nxt = syllables[i + 1][3] if i + 1 < len(syllables) else pitch * 9 // 10
        f0[a:b] = pitch + (nxt - pitch) * idx // length - 600 * idx // length
        vowel[a:b] = v
        if rng.below(2):  # a fricative-like onset: 40 ms of noise fading out
            m = min(length, SAMPLE_RATE * 40 // 1000)
            burst[a:a + m] = 1800 * (m - np.arange(m, dtype=np.int64)) // m
    phase = np.cumsum(f0 * (1 << 32) // (SAMPLE_RATE * 100)) & 0xFFFFFFFF
    formants = np.array(VOWELS, dtype=np.int64)[vowel]  # (n, 3)
    voice = np.zeros(n, dtype=np.int64)
    for k in range(1, N_HARMONICS + 1):
        hz = k * f0 // 100
        amp = np.zeros(n, dtype=np.int64)
        for j, (gain, half) in enumerate(zip(FORMANT_GAIN, FORMANT_HALF_WIDTH_HZ, strict=True)):
            amp += gain * np.maximum(0, half - np.abs(hz - formants[:, j])) * 1024 // half
        amp += 2048 // k  # the glottal source's roll-off, between formants too
        amp = np.where(hz < MAX_HARMONIC_HZ, amp, 0)
        voice += amp * _sin_q15((k * phase) & 0xFFFFFFFF) // 4096
    signal = voice * env // 4096
    signal += rng.noise(n) * burst // 16384  # consonants
    signal += rng.noise(n) // 1024  # the noise floor, about -60 dBFS
    peak = int(np.abs(signal).max()) or 1
    return np.clip(signal * 16384 // peak, -32768, 32767).astype("<i2")  # peak at -6 dBFS


def wav_bytes(samples: np.ndarray) -> bytes:
    """A mono 16-bit PCM WAV at SAMPLE_RATE (the stdlib's writer: no timestamps, the same bytes always)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(samples.astype("<i2").tobytes())
    return buf.getvalue()


def utterance(seconds: int = 5, *, seed: int = 0, root: Path | None = None) -> Utterance:
    """The seeded utterance of `seconds` (5 and 30 are the documented lengths; any whole 1..30), written
    once under `root` (default: audio_dir()) and reused while its bytes are right."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= MAX_SECONDS:
        raise EdgebenchError(f"utterance length {seconds!r} s not supported: a whole number of seconds, 1 to "
                             f"{MAX_SECONDS} (one Whisper window)", seconds=seconds,
                             hint=f"use {' or '.join(map(str, LENGTHS_S))} s, the documented lengths")
    data = wav_bytes(synthesize(seconds, seed))
    sha = hashlib.sha256(data).hexdigest()
    folder = Path(root) if root is not None else audio_dir()
    path = folder / f"utterance-{seconds}s-seed{seed}.wav"
    if not (path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha):
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".tmp-{path.name}-p{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    return Utterance(path=path, sha256=sha, seconds=seconds, sample_rate=SAMPLE_RATE,
                     samples=seconds * SAMPLE_RATE, seed=seed)
