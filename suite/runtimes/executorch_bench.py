"""Runtime `executorch`: ExecuTorch's LLM runner `llama_main` on a phone's shell, from the user's bundle
(issue 16). edgebench cannot build it (an export needs torch, and the QNN/Vulkan delegates link the
phone's vendor libraries): the user's `llama_main` for the phone's ABI with the `*.so` files it needs
(QNN's `libQnnHtp*.so` and the Hexagon `libQnnHtpV*Skel.so` for a QNN program) is pushed and pinned by
sha256 like any bundle.

**Bundle**: `DIR/llama_main` and the `*.so` files beside it or in `DIR/lib/`. **Model**: the user's
program, `--model-file M.pte` (its delegates, read from the file, say where it runs: `XnnpackBackend` the
CPU, `VulkanBackend` the GPU, `QnnBackend` the NPU; `--backend` must agree). **Tokenizer**: `--tokenizer T`
(`tokenizer.json`, `tokenizer.model` or `.bin`), pushed beside the model.

**A repetition** is one invocation (one process: load, then one generation), warmups first:

    LD_LIBRARY_PATH=DIR:DIR/lib ADSP_LIBRARY_PATH='DIR;...' llama_main --model_path=M --tokenizer_path=T
        --prompt='the the ...' --temperature=0 --seq_len=S [--max_new_tokens=D] [--cpu_threads=T]

`--max_new_tokens` and `--cpu_threads` only where the binary's `--help` lists them (gflags refuses an
unknown flag; older runners have neither and count `--seq_len` as prompt + generated tokens: S = P + D;
with `--max_new_tokens` S = 2P + D, room for a tokenizer that splits the prompt finer). Its output is read
by `suite.runtimes.outputs.executorch` (the `PyTorchObserver` line, else the stats block); the observer's
epoch-ms stamps place the phases exactly (suite.runtimes.one_shot).

Everything that builds a command line is a pure function, tested without a device. Verified here only on
captured outputs: no ExecuTorch runner for a phone can run on this machine (docs/engines.md).
"""

from __future__ import annotations

import re

from suite.core.measure import BurstParams
from suite.runtimes.base import NATIVE, DeviceCall
from suite.runtimes.native import marked_command
from suite.runtimes.one_shot import Invocation, OneShotRuntime, Plan, prompt_text
from suite.transport import quote

NAME = "executorch"
BINARIES = ("llama_main",)
#: the flags every llama_main has had (2024 on); the others are used only where --help lists them
BASE_FLAGS = frozenset({"model_path", "tokenizer_path", "prompt", "temperature", "seq_len"})
#: a gflags --help line: `    -max_new_tokens (Maximum number of tokens to generate.) type: int32 default: 128`
_FLAG = re.compile(r"^\s+-(\w+) \(")


def help_flags(text: str) -> frozenset[str]:
    """The flags a gflags `--help` lists (none found: the base set, a runner built without gflags' help)."""
    found = {m.group(1) for m in map(_FLAG.match, text.splitlines()) if m}
    return frozenset(found) if found & BASE_FLAGS else BASE_FLAGS


def llama_main_argv(binary: str, model: str, tokenizer: str, params: BurstParams, flags: frozenset[str],
                    threads: int | None = None) -> list[str]:
    """The runner's command line (see the module doc)."""
    p, d = params.prompt_tokens, params.gen_tokens
    newer = "max_new_tokens" in flags
    argv = [binary, f"--model_path={model}", f"--tokenizer_path={tokenizer}", f"--prompt={prompt_text(p)}",
            "--temperature=0", f"--seq_len={2 * p + d if newer else p + d}"]
    if newer:
        argv.append(f"--max_new_tokens={d}")
    if threads and "cpu_threads" in flags:
        argv.append(f"--cpu_threads={threads}")
    return argv


def invocation(bundle_remote: str, binary: str, model: str, tokenizer: str, params: BurstParams,
               flags: frozenset[str], *, pid_file: str | None = None, threads: int | None = None) -> Invocation:
    argv = llama_main_argv(f"{bundle_remote}/{binary}", model, tokenizer, params, flags, threads)
    command, nonce = marked_command(argv, ExecuTorchRuntime.lib_env(bundle_remote), pid_file=pid_file)
    return Invocation(tuple(argv), command, nonce)


class ExecuTorchRuntime(OneShotRuntime):
    """ExecuTorch's llama_main, from a user's bundle, on a device's shell."""

    name = NAME
    kind = NATIVE
    formats = ("pte",)
    compute_probed = False
    backends = ("cpu", "gpu", "npu")
    backend_from_artefact = True
    inputs = ("tokenizer",)
    binaries = BINARIES
    tool = "executorch"
    forms = ("PyTorchObserver", "stats")
    bundle_hint = ("ExecuTorch's llama_main built for the phone (examples/models/llama, Android arm64) and the .so "
                   "files it needs, in one folder; --model-file M.pte --tokenizer T: docs/engines.md")
    bundle_layout = "llama_main and its .so files"

    def prepare(self, call: DeviceCall) -> Plan:
        binary = self.bundle_binary(call.bundle_dir)
        path = f"{call.bundle_remote}/{binary}"
        env = " ".join(f"{k}={quote(v)}" for k, v in self.lib_env(call.bundle_remote))
        r = call.transport.shell(f"chmod 755 {quote(path)} && {env} {quote(path)} --help 2>&1"
                                 + (f"; rm -f {quote(call.pid_file)}" if call.pid_file else ""), timeout_s=60)
        flags = help_flags(r.stdout or "")
        threads = call.params.threads

        def make() -> Invocation:
            return invocation(call.bundle_remote, binary, call.model_remote, call.inputs["tokenizer"], call.params,
                              flags, pid_file=call.pid_file, threads=threads)

        first = make()
        runtime = {"name": NAME, "version": None, "backend": call.params.backend.upper(),
                   "backend_requested": call.params.backend, "threads": threads if "cpu_threads" in flags else None,
                   "affinity": None, "binary": binary, "flags": sorted(flags & {"max_new_tokens", "cpu_threads"}),
                   "commands": {"invocation": first.command}}
        return Plan(runtime, make)


__all__ = ["BASE_FLAGS", "ExecuTorchRuntime", "help_flags", "invocation", "llama_main_argv"]
