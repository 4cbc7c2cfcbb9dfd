"""A voice turn as a user feels it (the `voice` scenario): speech recognition of an utterance, then the
reply's prefill and decode, and whether the phone holds a conversation.

Pure functions of what the engines timed (the whisper.cpp driver's JSON, llama-bench's rows) and of the
sampler's rows; docs/scenarios.md states every threshold here.

- `turn_latency_s`, end of speech to the first reply token: the ASR's processing (log-mel + encoder +
  the fixed number of decoder steps) plus the reply prompt's prefill, whose logits give the first reply
  token. Each part is timed by its engine with its model already loaded; the loads are reported apart
  (`asr_load_s`) and never counted in the latency.
- `asr_rtf`: the ASR's processing time / the utterance's duration (< 1: faster than real time).
- The reply's decode tok/s against a speaking rate: SPEAKING_RATE_WPS words per second, at
  WORDS_PER_TOKEN words per token, is SPEAKING_RATE_TPS tokens per second. Speech output (TTS) is out of
  scope: the reply's text speed against the speaking rate stands in for it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

#: a conversational speaking rate: about 3 words per second (150 to 180 words per minute)
SPEAKING_RATE_WPS = 3.0
#: English text averages about 0.75 words per token with the common BPE tokenizers
WORDS_PER_TOKEN = 0.75
#: the speaking rate in tokens per second (4.0): a reply decoding slower than this makes a voice wait on text
SPEAKING_RATE_TPS = SPEAKING_RATE_WPS / WORDS_PER_TOKEN
#: the ASR's decoder steps per second of audio: the speaking rate's tokens in the utterance
ASR_TOKENS_PER_AUDIO_S = SPEAKING_RATE_TPS

#: verdict thresholds. conversational: ASR faster than real time, the first reply token within
#: CONVERSATIONAL_LATENCY_S of the end of speech (people expect an answer within about a second), the
#: reply at least as fast as speech. marginal: ASR faster than real time, the first token within
#: MARGINAL_LATENCY_S, the reply at least MARGINAL_REPLY_FRACTION of the speaking rate. Otherwise: not.
CONVERSATIONAL_LATENCY_S = 1.0
MARGINAL_LATENCY_S = 3.0
MARGINAL_REPLY_FRACTION = 0.5

CONVERSATIONAL = "conversational"
MARGINAL = "marginal"
NOT_CONVERSATIONAL = "not"
VERDICTS = (CONVERSATIONAL, MARGINAL, NOT_CONVERSATIONAL)


def asr_decode_tokens(audio_s: float) -> int:
    """The decoder steps an utterance of `audio_s` seconds gets: its words at the speaking rate, as tokens."""
    return max(1, math.ceil(audio_s * ASR_TOKENS_PER_AUDIO_S))


def thresholds() -> dict:
    """The verdict's rule as the record stores it (the numbers a reader needs to check it)."""
    return {"speaking_rate_wps": SPEAKING_RATE_WPS, "words_per_token": WORDS_PER_TOKEN,
            "speaking_rate_tps": SPEAKING_RATE_TPS, "conversational_latency_s": CONVERSATIONAL_LATENCY_S,
            "marginal_latency_s": MARGINAL_LATENCY_S, "marginal_reply_fraction": MARGINAL_REPLY_FRACTION}


def verdict(asr_rtf: float | None, latency_s: float | None, reply_tps: float | None) -> tuple[str | None, str]:
    """(conversational | marginal | not, why), or (None, why) when a figure is missing."""
    missing = [n for n, v in (("asr_rtf", asr_rtf), ("turn_latency_s", latency_s), ("reply decode tok/s", reply_tps))
               if v is None]
    if missing:
        return None, f"not judged: no {', '.join(missing)}"
    said = (f"ASR {asr_rtf:.2f}x real time, first reply token {latency_s:.2f} s after speech, reply "
            f"{reply_tps:.1f} tok/s against speech at {SPEAKING_RATE_TPS:.1f} tok/s")
    if asr_rtf < 1 and latency_s <= CONVERSATIONAL_LATENCY_S and reply_tps >= SPEAKING_RATE_TPS:
        return CONVERSATIONAL, said
    if asr_rtf < 1 and latency_s <= MARGINAL_LATENCY_S and reply_tps >= MARGINAL_REPLY_FRACTION * SPEAKING_RATE_TPS:
        return MARGINAL, said
    return NOT_CONVERSATIONAL, said


def peak_in(rows: Iterable, channel: str, spans: Sequence[tuple[float, float]]) -> float | None:
    """The highest `channel` reading inside any of `spans` (None: none there)."""
    vals = [v for t, ch, v in rows if ch == channel and any(a <= t <= b for a, b in spans)]
    return max(vals) if vals else None


def thermal_after(rows: Iterable, t_end: float) -> dict:
    """Each temperature channel's first reading and its last at or before `t_end` (the end of the last
    turn), and the highest thermal status: the phone's state after M consecutive turns."""
    first: dict[str, tuple[float, float]] = {}
    last: dict[str, tuple[float, float]] = {}
    status = None
    for t, ch, v in rows:
        if ch == "thermal_status" and t <= t_end:
            status = v if status is None else max(status, v)
        if not ch.startswith("temp_c/") or t > t_end:
            continue
        if ch not in first or t < first[ch][0]:
            first[ch] = (t, v)
        if ch not in last or t > last[ch][0]:
            last[ch] = (t, v)
    temps = {ch: {"start_c": round(first[ch][1], 2), "end_c": round(last[ch][1], 2),
                  "rise_c": round(last[ch][1] - first[ch][1], 2)} for ch in sorted(last)}
    hottest = max(temps, key=lambda c: temps[c]["end_c"]) if temps else None
    return {"temps": temps, "hottest": hottest, "hottest_end_c": temps[hottest]["end_c"] if hottest else None,
            "thermal_status_max": status}
