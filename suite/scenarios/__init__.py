"""Scenarios, registered by name like runtimes: each is one module; its line below names it
(imported on first use, so `--help` and the lab plan's validation import none of them).

A scenario is a class with `name`, `needs_phone`, `options`, `single_run` and a uniform
`run(ref, req, *, gate, status, on_rep, push_progress, options) -> ScenarioResult`
(suite/scenarios/base.py). The CLI's `run --scenario` and the lab's workers call it; the lab
plan checks a job's `scenario` against the names here.
"""

from suite.core.registry import Registry
from suite.scenarios.base import Scenario, ScenarioResult

SCENARIOS: Registry[type[Scenario]] = Registry("scenario")
SCENARIOS.add("burst", "suite.scenarios.burst:BurstScenario", about="prefill/decode/TTFT")
SCENARIOS.add("sustained", "suite.scenarios.sustained:SustainedScenario", about="throttling over time, on a phone")
SCENARIOS.add("fit", "suite.scenarios.fit:FitScenario", about="largest model that runs, on a phone")
SCENARIOS.add("voice", "suite.scenarios.voice:VoiceScenario",
              about="an offline voice turn (whisper.cpp speech recognition + the LLM's reply), on a phone")


def get_scenario(name: str) -> Scenario:
    """A registered scenario by name (an UnknownNameError, exit code 2, lists the registered ones)."""
    return SCENARIOS.get(name)()


__all__ = ["SCENARIOS", "Scenario", "ScenarioResult", "get_scenario"]
