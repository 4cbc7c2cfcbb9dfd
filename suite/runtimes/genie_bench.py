"""Runtime `genie`: Qualcomm's Genie through `genie-t2t-run` on a phone's shell, from the user's QAIRT bundle
(issue 16). edgebench cannot build it (Qualcomm's SDK, the phone's DSP): the user's `genie-t2t-run` and
`libGenie.so` with the QNN libraries (`libQnnHtp.so`, `libQnnHtpV*Stub.so`, `libQnnSystem.so`, and the
Hexagon `libQnnHtpV*Skel.so` the DSP loads) for the phone, pushed and pinned by sha256 like any bundle.

**Bundle**: `DIR/genie-t2t-run` and the `*.so` files beside it or in `DIR/lib/`. **Model**:
`--genie-config C.json`: the config and every file it names (context binaries, tokenizer, the backend
extensions config), found relative to its folder (suite.models.user_file), pushed beside it keeping that
layout (a file outside the folder goes to `_ext/`). The config pushed is edgebench's copy of it: every
path rewritten to the pushed file's, and `dialog.max-num-tokens` set to the run's generated tokens
(`runtime.config_overrides` says so). Where it runs is the config's engine backend (`QnnHtp` the NPU,
`QnnGpu` the GPU, `QnnGenAiTransformer` the CPU); `--backend` must agree.

**A repetition** is one invocation (one process: dialog create, one query, free), warmups first, in the
config's folder so its relative paths resolve:

    cd MODEL_DIR && LD_LIBRARY_PATH=DIR:DIR/lib ADSP_LIBRARY_PATH='DIR;DIR/lib;/vendor/dsp/cdsp;...'
        genie-t2t-run -c CONFIG --prompt 'the the ...' --profile PROFILE.json; cat PROFILE.json

Its profile (and the libGenie 1.0 console KPI lines where that is all it prints) is read by
`suite.runtimes.outputs.genie`; the profile counts on a clock of its own, so the query's prefill and
decode are packed at the end of the invocation (suite.runtimes.one_shot).

Verified here only on captured outputs: no Genie build can run on this machine (docs/engines.md).
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from suite.core.measure import BurstParams
from suite.models import default_models_dir
from suite.runtimes.base import NATIVE, DeviceCall
from suite.runtimes.native import marked_command
from suite.runtimes.one_shot import Invocation, OneShotRuntime, Plan, prompt_text
from suite.transport import quote

NAME = "genie"
BINARIES = ("genie-t2t-run",)


def run_config(config: dict, paths: dict[str, str], gen_tokens: int) -> tuple[dict, dict]:
    """(the config as pushed, what edgebench changed in it): every string naming a file (a key of `paths`,
    as written in the config) replaced by its pushed name; `max-num-tokens` of the dialog (or text
    generator) set to `gen_tokens`."""
    out = copy.deepcopy(config)

    def walk(node):
        if isinstance(node, dict):
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return paths.get(node, node) if isinstance(node, str) else node

    out = walk(out)
    overrides = {}
    for key in ("dialog", "text-generator"):
        if isinstance(out.get(key), dict):
            overrides[f"{key}.max-num-tokens"] = {"was": out[key].get("max-num-tokens"), "now": gen_tokens}
            out[key]["max-num-tokens"] = gen_tokens
            break
    moved = {w: r for w, r in paths.items() if w != r}
    if moved:
        overrides["paths"] = moved
    return out, overrides


def t2t_argv(binary: str, config: str, params: BurstParams, profile: str) -> list[str]:
    return [binary, "-c", config, "--prompt", prompt_text(params.prompt_tokens), "--profile", profile]


def invocation(bundle_remote: str, binary: str, config_remote: str, params: BurstParams, *,
               pid_file: str | None = None) -> Invocation:
    """One genie-t2t-run in the config's folder, its profile printed after it and removed."""
    folder, name = config_remote.rsplit("/", 1)
    argv = t2t_argv(f"{bundle_remote}/{binary}", name, params, "edgebench-profile.json")
    command, nonce = marked_command(argv, GenieRuntime.lib_env(bundle_remote), pid_file=pid_file, cwd=folder)
    profile = quote(f"{folder}/edgebench-profile.json")
    return Invocation(tuple(argv), f"rm -f {profile}; {command}; cat {profile} 2>/dev/null; rm -f {profile}", nonce)


class GenieRuntime(OneShotRuntime):
    """Qualcomm Genie's genie-t2t-run, from a user's bundle, on a device's shell."""

    name = NAME
    kind = NATIVE
    formats = ("qnn-context-binary",)
    compute_probed = False
    backends = ("cpu", "gpu", "npu")
    backend_from_artefact = True
    binaries = BINARIES
    tool = "genie"
    forms = ("profile-json", "console")
    bundle_hint = ("QAIRT's genie-t2t-run, libGenie.so and the QNN libraries for the phone (lib/aarch64-android "
                   "and the Hexagon skel of its DSP, lib/hexagon-v*) in one folder; --genie-config C.json: "
                   "docs/engines.md")
    bundle_layout = "genie-t2t-run, libGenie.so and the QNN .so files"

    def model_files(self, built, params: BurstParams) -> dict[str, Path]:
        """edgebench's copy of the config (first: what runs), then every file it names, by pushed name."""
        config = Path(built.model_file)
        paths = built.manifest["genie_paths"]
        pushed, overrides = run_config(json.loads(config.read_text(encoding="utf-8")), paths, params.gen_tokens)
        text = json.dumps(pushed, indent=2, sort_keys=True)
        digest = hashlib.sha256(text.encode()).hexdigest()
        local = default_models_dir().parent / "runtimes" / "genie-configs" / f"{digest[:16]}.json"
        if not local.is_file():
            local.parent.mkdir(parents=True, exist_ok=True)
            tmp = local.with_suffix(".tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(local)
        self.overrides = overrides
        named = built.manifest["genie_files"]
        return {f"edgebench-{digest[:12]}.json": local,
                **{name: Path(path) for name, path in named.items() if name != config.name}}

    def prepare(self, call: DeviceCall) -> Plan:
        binary = self.bundle_binary(call.bundle_dir)
        call.transport.shell(f"chmod 755 {quote(call.bundle_remote + '/' + binary)}"
                             + (f" && rm -f {quote(call.pid_file)}" if call.pid_file else ""), timeout_s=15,
                             check=True)

        def make() -> Invocation:
            return invocation(call.bundle_remote, binary, call.model_remote, call.params, pid_file=call.pid_file)

        runtime = {"name": NAME, "version": None, "backend": call.params.backend.upper(),
                   "backend_requested": call.params.backend, "threads": None, "affinity": None, "binary": binary,
                   "config_overrides": getattr(self, "overrides", None), "commands": {"invocation": make().command}}
        return Plan(runtime, make)


__all__ = ["GenieRuntime", "invocation", "run_config", "t2t_argv"]
