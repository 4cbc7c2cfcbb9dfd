"""What the vendor tools that run ONE generation per process share (ExecuTorch's `llama_main`, Qualcomm's
`genie-t2t-run`): one invocation per repetition (warmups first) between device-clock markers, the tool's
own printed timings parsed by its `suite.runtimes.outputs` parser (the importer's: one reading of the
tool's text) and placed on the device's timeline, its validity judged by `invalid_reason`.

**Placement.** Where the tool prints its events' timestamps on the device's wall clock (ExecuTorch's
observer: epoch ms) and they fall inside the invocation's markers, the phases are placed exactly there;
otherwise (Genie's profile counts on a clock of its own) the prefill and decode the tool timed are packed
at the end of the invocation's window, in that order (what precedes them is process start and model
load: the `warmup` phase, as is every warmup invocation).

**Counting.** These tools take text, not a token count: the prompt is `prompt_text(prompt_tokens)` ("the"
repeated, one token in the vocabularies of every LLM family this suite knows), and what counts is what the
tool reports it processed (`NativeRun.counted`: its prompt and generated tokens, the rounded mean of the
measured repetitions when they differ, each repetition's in the record's `runtime.tokens`). A generation
may also stop early at an end-of-sequence token. The decode rate is edgebench's, as for every runtime: the
tokens after the first over the decode time ((N - 1) / decode s; both tools print N / decode s).
"""

from __future__ import annotations

from dataclasses import dataclass

from suite.core.measure import BurstParams, Repetition
from suite.core.stats import metric
from suite.runtimes.base import KILLED_EXIT, DeviceCall, NativeRun
from suite.runtimes.native import VendorBundle, read_markers
from suite.runtimes.outputs import TOOL_PARSERS, ToolRun, invalid_reason

#: how far (s) the tool's wall-clock stamps may stray outside the invocation's markers and still be used
CLOCK_SLACK_S = 0.5


def prompt_text(tokens: int) -> str:
    """A prompt of about `tokens` tokens with the beginning-of-sequence token the runner adds: one word less."""
    return " ".join(["the"] * max(1, tokens - 1))


@dataclass(frozen=True)
class Invocation:
    argv: tuple[str, ...]
    command: str
    nonce: str


@dataclass
class Plan:
    runtime: dict
    #: builds one invocation (a new nonce each time)
    invocation: object = None
    partial: NativeRun | None = None


def spans_of(run: ToolRun, t_start: float, t_end: float) -> tuple[float, float, float, bool]:
    """(start, prefill end, end, exact) of the generation on the device clock: the tool's own wall-clock
    stamps when they lie inside the invocation, else its prefill and decode durations packed at the end."""
    c = run.clock
    if all(k in c for k in ("inference_start", "prefill_end", "inference_end")) and \
            t_start - CLOCK_SLACK_S <= c["inference_start"] <= c["prefill_end"] <= c["inference_end"] \
            <= t_end + CLOCK_SLACK_S:
        a, pre, b = (min(max(c[k], t_start), t_end) for k in ("inference_start", "prefill_end", "inference_end"))
        return a, pre, b, True
    pre_s = run.values.get("prefill_s") or run.values.get("ttft_s") or 0.0
    dec_s = run.values.get("decode_s") or 0.0
    a = max(t_start, t_end - pre_s - dec_s)
    return a, min(t_end, a + pre_s), t_end, False


def repetition(run: ToolRun, span: tuple[float, float, float], warmup: bool) -> Repetition:
    """The first token at the prefill's end, the other generated tokens evenly over the decode time (the
    tools time the decode as a whole: its rate is exact, no per-token latency is claimed)."""
    a, pre, b = span
    rest = max(0, int(run.counts.get("gen_tokens") or 1) - 1)
    return Repetition(warmup, a, pre, pre, [pre + (b - pre) * (k + 1) / rest for k in range(rest)])


class OneShotRuntime(VendorBundle):
    """A vendor tool that runs one generation per process; a subclass says how to call it
    (`prepare` -> a Plan whose `invocation()` gives an Invocation) and which of its output forms hold a run."""

    #: the suite.runtimes.outputs parser of its text, and the forms that hold a measured generation
    tool: str = ""
    forms: tuple[str, ...] = ()
    windows = False

    def pick(self, runs: list[ToolRun]) -> ToolRun | None:
        """The generation an invocation printed: the last run of the most preferred form."""
        for form in self.forms:
            found = [r for r in runs if r.form == form]
            if found:
                return found[-1]
        return None

    def execute(self, call: DeviceCall, plan: Plan, on_rep=None) -> NativeRun:
        p = call.params
        parser = TOOL_PARSERS.get(self.tool)
        run = plan.partial = NativeRun(runtime=dict(plan.runtime), spans={"prefill": [], "decode": [], "warmup": []})
        samples: dict[str, list[float]] = {"prefill_tps": [], "decode_tps": [], "ttft_s": [], "load_s": []}
        counts: list[tuple[int, int]] = []
        placed = []
        total = p.warmup + p.reps
        for i in range(total):
            inv = plan.invocation()
            warm = i < p.warmup
            call.say(f"{self.name} on {call.transport.serial}: {'warmup' if warm else 'repetition'} {i + 1}/{total}")
            r = call.transport.shell(inv.command, timeout_s=call.timeout_s)
            out = read_markers(r.stdout, inv.nonce)
            log = out.text + "\n" + (r.stderr or "")
            got = self.pick(parser.parse(log))
            if out.exit_code or got is None or out.t_start is None or out.t_end is None:
                why = f"exit status {out.exit_code}" if out.exit_code else "no timings printed"
                if got is not None and got.failed:
                    why += f": {got.failed}"
                run.failure = ("crashed" if run.n_reps else "load_failed", f"{self.name} gave no result ({why})")
                if out.exit_code == KILLED_EXIT:
                    run.failure = ("oom", f"{self.name} was killed (exit 137): the model does not fit in the "
                                          "device's memory")
                run.output = log.strip().splitlines()[-20:]
                run.illegal_instruction = out.exit_code == 132
                break
            reason = invalid_reason(got)
            if reason:
                run.failure = ("failed", f"{self.name} {'warmup' if warm else 'repetition'} {i + 1}: {reason}")
                run.metrics, run.unavailable = {}, {m: f"run failed: {reason}" for m in samples}
                run.output = log.strip().splitlines()[-20:]
                return run
            a, pre, b, exact = spans_of(got, out.t_start, out.t_end)
            placed.append(exact)
            rep = repetition(got, (a, pre, b), warm)
            run.reps.append(rep)
            if warm:
                run.spans["warmup"].append((out.t_start, out.t_end))
            else:
                if a > out.t_start:
                    run.spans["warmup"].append((out.t_start, a))  # process start and model load
                run.spans["prefill"].append((a, pre))
                run.spans["decode"].append((pre, b))
                run.n_reps += 1
                n_prompt, n_gen = int(got.counts.get("prompt_tokens") or 0), int(got.counts.get("gen_tokens") or 0)
                counts.append((n_prompt, n_gen))
                v = got.values
                if v.get("prefill_s") and n_prompt:
                    samples["prefill_tps"].append(n_prompt / v["prefill_s"])
                elif v.get("prefill_tps"):
                    samples["prefill_tps"].append(v["prefill_tps"])
                if v.get("decode_s") and n_gen > 1:
                    samples["decode_tps"].append((n_gen - 1) / v["decode_s"])
                for name in ("ttft_s", "load_s"):
                    if v.get(name):
                        samples[name].append(v[name])
            if on_rep is not None:
                on_rep(i, total, rep)
            run.runtime["engine"] = dict(got.identity)
        run.metrics = {name: metric(name, vals) for name, vals in samples.items() if vals}
        if counts:
            run.counted = tuple(round(sum(c[k] for c in counts) / len(counts)) for k in (0, 1))
            run.runtime["tokens"] = {"asked": {"prompt": p.prompt_tokens, "generated": p.gen_tokens},
                                     "prompt": [c[0] for c in counts], "generated": [c[1] for c in counts]}
        if placed:
            run.runtime["timeline"] = ("the tool's own wall-clock stamps" if all(placed) else
                                       "the tool's durations, packed at the end of each invocation")
        return run

    def analysis_params(self, params: BurstParams) -> BurstParams:
        return params


__all__ = ["CLOCK_SLACK_S", "Invocation", "OneShotRuntime", "Plan", "prompt_text", "repetition", "spans_of"]
