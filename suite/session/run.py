"""The one entry to a measured run: any registered runtime, on this host or an attached device.

`check_request` refuses what cannot run before any work is done (a model build, a push);
`run` sends the run to this host's session (an in-process runtime) or to the device session
(suite.session.device: a Python runtime through the device-side runner, or a native runtime's
bundle). Callers (the CLI, lab workers, scenarios) name no runtime.
"""

from __future__ import annotations

from pathlib import Path

from suite.core.errors import EdgebenchError
from suite.runtimes import Runtime, get_runtime, is_native
from suite.session.device import ScenarioHooks, run_device
from suite.session.local import RunRequest, Status, run_local


def on_device(ref) -> bool:
    return ref is not None and getattr(ref, "serial", "local") != "local"


def check_request(req: RunRequest, ref) -> Runtime:
    """The request's runtime, or a clear error when it cannot run as asked (before any work)."""
    runtime = get_runtime(req.runtime)
    if is_native(runtime) and (req.runtime_bundle is None or not on_device(ref)):
        raise EdgebenchError(f"the {runtime.name} runtime runs a native bundle on a phone: give --device SERIAL "
                             "and --runtime-bundle DIR", hint=runtime.bundle_hint, exit_code=2)
    if not is_native(runtime) and req.runtime_bundle is not None:
        raise EdgebenchError(f"--runtime-bundle is for native runtimes; {runtime.name} runs in process",
                             exit_code=2)
    return runtime


def run(ref, req: RunRequest, *, status: Status | None = None, on_rep=None, push_progress=None,
        hooks: ScenarioHooks | None = None) -> Path:
    """One measured run; returns its folder (always written once measuring started)."""
    check_request(req, ref)
    if not on_device(ref):
        return run_local(req, status=status, on_rep=on_rep)
    return run_device(ref, req, status=status, on_rep=on_rep, push_progress=push_progress, hooks=hooks)
