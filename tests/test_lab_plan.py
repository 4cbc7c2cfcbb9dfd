"""Lab plans: loading, expansion, job keys, and one clear error (with its line) per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from suite.lab.plan import PlanError, job_key, load_plan, parse_duration

FULL = """\
version = 1
name = "nightly"
output = "results"

[devices]
select = ["all", "tier=flagship"]
adb = ["127.0.0.1:5037", "10.0.0.5:5038"]
exclude = ["BADPHONE"]

[defaults]
runtime = "ort-genai"
prompt_tokens = 256
gen_tokens = 32
reps = 3
warmup = 0
seed = 7
rate = 5
repetitions = 2

[gate]
cooldown_max_temp = 35.0
cooldown_sensor = "max"
cooldown_timeout = "10m"
cooldown_delay = 30
battery_floor = 50
battery_wait = true

[run]
retries = 2
max_parallel_pushes = 3
order = "shuffle"
shuffle_seed = 4
lost_timeout = "1h"

[[jobs]]
scenario = "burst"
models = ["llama-68m", "smollm2-135m"]
runtimes = ["ort-genai", "llama.cpp"]

[[jobs]]
scenario = "sustained"
models = ["llama-68m"]
duration = "2m"
reps = 9
repetitions = 1
devices = ["tier=flagship"]

[[jobs]]
scenario = "fit"
models = ["smollm2-135m", "llama-68m"]
runtime = "llama.cpp"
quant = "q8_0"
repetitions = 1
"""

MINIMAL_HEAD = """\
version = 1

[devices]
select = ["all"]
"""

BURST = """
[[jobs]]
scenario = "burst"
models = ["llama-68m"]
"""


def write(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def fails(tmp_path: Path, text: str) -> PlanError:
    with pytest.raises(PlanError) as info:
        load_plan(write(tmp_path, text))
    assert info.value.exit_code == 2
    return info.value


def line_of(text: str, needle: str, occurrence: int = 1) -> int:
    hits = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


# --- valid plans ---------------------------------------------------------------------------------


def test_full_plan_loads(tmp_path):
    plan = load_plan(write(tmp_path, FULL))
    assert plan.name == "nightly"
    assert plan.output == tmp_path.resolve() / "results"
    assert plan.work_dir == tmp_path.resolve() / ".edgebench-lab" / "nightly"
    assert plan.devices.select == ("all", "tier=flagship")
    assert [str(a) for a in plan.devices.adb] == ["127.0.0.1:5037", "10.0.0.5:5038"]
    assert plan.devices.exclude == ("BADPHONE",)
    assert plan.run.retries == 2 and plan.run.max_parallel_pushes == 3
    assert plan.run.order == "shuffle" and plan.run.shuffle_seed == 4 and plan.run.lost_timeout_s == 3600
    assert len(plan.text_sha256) == 64
    assert "nightly" in plan.describe() and "10 jobs" in plan.describe()


def test_expansion_is_models_x_runtimes_x_repetitions(tmp_path):
    jobs = load_plan(write(tmp_path, FULL)).expand()
    assert len(jobs) == 2 * 2 * 2 + 1 + 1  # models x runtimes x repetitions, one sustained, one fit
    burst = [j for j in jobs if j.index == 0]
    assert [(j.model, j.runtime, j.repetition) for j in burst] == [
        (m, rt, rep) for m in ("llama-68m", "smollm2-135m") for rt in ("ort-genai", "llama.cpp") for rep in (0, 1)]
    assert burst[0].params == {"prompt_tokens": 256, "gen_tokens": 32, "reps": 3, "warmup": 0, "threads": None,
                               "quant": None, "seed": 7, "rate": 5.0, "probe": False, "idle_s": 5.0}
    assert burst[0].line == line_of(FULL, "[[jobs]]", 1)


def test_job_values_override_defaults(tmp_path):
    jobs = load_plan(write(tmp_path, FULL)).expand()
    (sustained,) = [j for j in jobs if j.scenario == "sustained"]
    assert sustained.params["reps"] == 9 and sustained.params["prompt_tokens"] == 256
    assert sustained.params["duration_s"] == 120.0 and sustained.params["windows"] is None
    assert sustained.params["window_tokens"] == 64
    assert sustained.devices == ("tier=flagship",)
    (fit,) = [j for j in jobs if j.scenario == "fit"]
    assert fit.runtime == "llama.cpp" and fit.model is None and fit.params["quant"] == "q8_0"
    assert fit.params["models"] == ["llama-68m", "smollm2-135m"]  # the ladder, smallest first


def test_defaults_when_tables_are_absent(tmp_path):
    plan = load_plan(write(tmp_path, MINIMAL_HEAD + BURST + '\n[[jobs]]\nscenario = "fit"\n', "mini.toml"))
    assert plan.name == "mini" and plan.gate is None and plan.run.retries == 1 and plan.devices.adb == ()
    burst, fit = plan.expand()
    assert burst.runtime == "ort-genai" and burst.params["reps"] == 5 and burst.params["probe"] is False
    from suite.catalog.cards import reference_cards

    assert fit.params["models"] == [c.id for c in reference_cards()]
    assert "qwen2.5-14b" not in fit.params["models"]  # beyond-RAM rungs only when named


def test_window_tokens_default_matches_scenarios():
    from suite.lab import plan
    from suite.scenarios.sustained import DEFAULT_WINDOW_TOKENS

    assert plan.DEFAULT_WINDOW_TOKENS == DEFAULT_WINDOW_TOKENS


def test_job_params_carry_each_scenarios_own_options(tmp_path):
    """What the worker passes a scenario (its `options`, read from the job's params) is in the params."""
    from suite.scenarios import get_scenario

    base = {"idle_s"} | {"prompt_tokens", "gen_tokens", "reps", "warmup", "threads", "quant", "seed", "rate",
                         "probe"}
    for job in load_plan(write(tmp_path, FULL)).expand():
        # every option a scenario always takes; fit's walk past RAM only when the job sets it
        optional = {"beyond_ram", "floor_tps", "rung_timeout_s"} if job.scenario == "fit" else set()
        assert set(job.params) - base == set(get_scenario(job.scenario).options) - optional, job.scenario


def test_gate_table_is_the_gate_the_scenarios_take(tmp_path):
    from suite.session.gating import Gate

    gate = load_plan(write(tmp_path, FULL)).gate
    assert isinstance(gate, Gate)
    assert gate.cooldown_max_temp_c == 35.0 and gate.cooldown_sensor == "max"
    assert gate.cooldown_timeout_s == 600.0 and gate.cooldown_delay_s == 30.0
    assert gate.battery_floor == 50.0 and gate.battery_wait is True


def test_model_file_and_llama_bench_bundle_are_relative_to_the_plan(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    (tmp_path / "bundle" / "bin").mkdir(parents=True)
    text = MINIMAL_HEAD + '\n[[jobs]]\nscenario = "burst"\nmodel_file = "m.gguf"\nruntime = "llama-bench"\n' \
        'runtime_bundle = "bundle"\n'
    (job,) = load_plan(write(tmp_path, text)).expand()
    assert job.model is None and job.model_file == tmp_path.resolve() / "m.gguf"
    assert job.runtime_bundle == tmp_path.resolve() / "bundle"
    assert job.identity()["model_file"] == "m.gguf"


def test_parse_duration():
    assert parse_duration(90) == 90.0
    assert parse_duration("90s") == 90.0
    assert parse_duration("10m") == 600.0
    assert parse_duration("1.5h") == 5400.0
    for bad in ("10 minutes", "", "-5s", -1, True, "m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


# --- job keys ------------------------------------------------------------------------------------


def test_job_key_is_stable_and_sensitive(tmp_path):
    a = load_plan(write(tmp_path, FULL)).expand()
    b = load_plan(write(tmp_path, FULL)).expand()
    assert [job_key(j.identity()) for j in a] == [job_key(j.identity()) for j in b]
    assert len(job_key(a[0].identity())) == 16
    assert len({job_key(j.identity()) for j in a}) == len(a)
    changed = load_plan(write(tmp_path, FULL.replace("seed = 7", "seed = 8"))).expand()
    assert job_key(changed[0].identity()) != job_key(a[0].identity())


def test_repetitions_differ_only_by_repetition(tmp_path):
    first, second = load_plan(write(tmp_path, FULL)).expand()[:2]
    one, two = first.identity(), second.identity()
    assert (one["repetition"], two["repetition"]) == (0, 1)
    assert {k: v for k, v in one.items() if k != "repetition"} == {k: v for k, v in two.items() if k != "repetition"}


# --- errors --------------------------------------------------------------------------------------


def test_toml_syntax_error_keeps_the_line(tmp_path):
    e = fails(tmp_path, MINIMAL_HEAD + "foo = \n" + BURST)
    assert e.line == 5 and e.message.startswith("plan.toml:5: TOML syntax")
    assert "(at line 5, column 7)" in e.message


@pytest.mark.parametrize("head, needle", [("", "required"), ("version = 2\n", "unsupported plan version 2"),
                                          ('version = "1"\n', "expected an integer")])
def test_version(tmp_path, head, needle):
    e = fails(tmp_path, head + MINIMAL_HEAD.replace("version = 1\n", "") + BURST)
    assert e.key == "version" and needle in e.message


def test_unknown_top_level_key(tmp_path):
    text = MINIMAL_HEAD.replace("version = 1\n", "version = 1\noutptu = 'x'\n") + BURST
    e = fails(tmp_path, text)
    assert e.line == 2 and e.key == "outptu" and e.message.startswith("plan.toml:2: outptu: unknown key")
    assert "did you mean output?" in str(e)


def test_unknown_key_in_gate_names_its_line(tmp_path):
    text = MINIMAL_HEAD + "\n[gate]\nbattery_floor = 40\ncooldown_max_tmp = 30\n" + BURST
    e = fails(tmp_path, text)
    assert e.line == line_of(text, "cooldown_max_tmp") and e.key == "[gate] cooldown_max_tmp"


def test_unknown_key_in_the_third_job_names_its_line(tmp_path):
    text = MINIMAL_HEAD + BURST + BURST + BURST.replace('scenario = "burst"', 'scenario = "burst"\nrepz = 3') + BURST
    e = fails(tmp_path, text)
    assert e.line == line_of(text, "repz") and e.key == "[[jobs]] #3 repz"
    assert e.message.startswith(f"plan.toml:{e.line}: [[jobs]] #3 repz: unknown key 'repz'")


def test_wrong_type(tmp_path):
    text = MINIMAL_HEAD + BURST.replace("scenario", 'reps = "five"\nscenario')
    e = fails(tmp_path, text)
    assert e.line == line_of(text, "reps =") and "expected an integer, got a string 'five'" in e.message


@pytest.mark.parametrize("table, entry, key", [
    ("gate", "battery_floor = 150", "battery_floor"),
    ("gate", "cooldown_max_temp = 0", "cooldown_max_temp"),
    ("run", "max_parallel_pushes = 0", "max_parallel_pushes"),
    ("run", "retries = -1", "retries"),
    ("defaults", "gen_tokens = 1", "gen_tokens"),
    ("defaults", "rate = 0", "rate"),
])
def test_out_of_range(tmp_path, table, entry, key):
    text = MINIMAL_HEAD + f"\n[{table}]\n{entry}\n" + BURST
    e = fails(tmp_path, text)
    assert e.line == line_of(text, entry) and e.key == f"[{table}] {key}" and "must be" in e.message


def test_unknown_model(tmp_path):
    text = MINIMAL_HEAD + BURST.replace('"llama-68m"', '"llama-68m", "smolm2-135m"')
    e = fails(tmp_path, text)
    assert e.message.startswith(f"plan.toml:{line_of(text, 'models')}: [[jobs]] #1 models: unknown model 'smolm2-135m'")
    assert "did you mean smollm2-135m" in str(e)


def test_unknown_runtime(tmp_path):
    text = MINIMAL_HEAD + "\n[defaults]\nruntime = 'onnxruntime'\n" + BURST
    e = fails(tmp_path, text)
    assert e.line == line_of(text, "runtime =") and "unknown runtime 'onnxruntime'" in e.message
    assert "llama-bench" in e.message


def test_unknown_scenario(tmp_path):
    text = MINIMAL_HEAD + BURST + BURST.replace('"burst"', '"brst"')
    e = fails(tmp_path, text)
    assert str(e) == (f"plan.toml:{line_of(text, 'brst')}: [[jobs]] #2 scenario: unknown scenario 'brst' "
                      "(burst, fit, sustained, voice)")  # the registry's names (suite.scenarios), sorted


def test_duration_on_burst(tmp_path):
    text = MINIMAL_HEAD + BURST + 'duration = "2m"\n'
    e = fails(tmp_path, text)
    assert e.line == line_of(text, "duration") and "only for scenario 'sustained'" in e.message


@pytest.mark.parametrize("extra, key, needle", [("", "duration", "needs duration"),
                                                ('duration = "2m"\nwindows = 5\n', "windows", "not both")])
def test_sustained_needs_one_of_duration_and_windows(tmp_path, extra, key, needle):
    text = MINIMAL_HEAD + BURST.replace('"burst"', '"sustained"') + extra
    e = fails(tmp_path, text)
    assert e.key == f"[[jobs]] #1 {key}" and needle in e.message
    assert e.line == (line_of(text, key) if extra else line_of(text, "[[jobs]]"))


def test_model_and_model_file(tmp_path):
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    both = fails(tmp_path, MINIMAL_HEAD + BURST + 'model_file = "m.gguf"\n')
    assert "exactly one of models" in both.message and both.key == "[[jobs]] #1 model_file"
    neither = fails(tmp_path, MINIMAL_HEAD + '\n[[jobs]]\nscenario = "burst"\n')
    assert "exactly one of models" in neither.message and neither.line == 6
    missing = fails(tmp_path, MINIMAL_HEAD + '\n[[jobs]]\nscenario = "burst"\nmodel_file = "nope.gguf"\n')
    assert "no file" in missing.message and missing.line == 8


def test_llama_bench_takes_edgebench_s_own_build_or_a_bundle_that_exists(tmp_path):
    text = MINIMAL_HEAD + BURST + 'runtime = "llama-bench"\n'
    (job,) = load_plan(write(tmp_path, text)).expand()
    assert job.runtime == "llama.cpp" and job.runtime_bundle is None  # edgebench builds it for each phone
    absent = fails(tmp_path, text + 'runtime_bundle = "no-such-dir"\n')
    assert "no folder" in absent.message


def test_depth_is_for_llama_cpp_and_changes_no_other_job_s_key(tmp_path):
    flat = load_plan(write(tmp_path, MINIMAL_HEAD + BURST + 'runtime = "llama.cpp"\n')).expand()[0]
    assert "depth" not in flat.params  # an empty context: the key a plan without depth always had
    (job,) = load_plan(write(tmp_path, MINIMAL_HEAD + BURST + 'runtime = "llama-bench"\ndepth = 512\n')).expand()
    assert job.runtime == "llama.cpp" and job.params["depth"] == 512
    assert job_key(job.identity()) != job_key(flat.identity())
    text = MINIMAL_HEAD + "\n[defaults]\ndepth = 512\n" + BURST + 'runtime = "ort-genai"\n'
    e = fails(tmp_path, text)
    assert e.key == "[defaults] depth" and "ort-genai has no such mode" in e.message
    assert "must be >= 0" in fails(tmp_path, MINIMAL_HEAD + BURST + "depth = -1\n").message


def test_backend_is_for_runtimes_that_have_it_and_changes_no_cpu_job_s_key(tmp_path):
    cpu = load_plan(write(tmp_path, MINIMAL_HEAD + BURST + 'runtime = "llama.cpp"\nbackend = "cpu"\n')).expand()[0]
    flat = load_plan(write(tmp_path, MINIMAL_HEAD + BURST + 'runtime = "llama.cpp"\n')).expand()[0]
    assert "backend" not in cpu.params and job_key(cpu.identity()) == job_key(flat.identity())
    (npu,) = load_plan(write(tmp_path, MINIMAL_HEAD + BURST + 'runtime = "llama.cpp"\nbackend = "npu"\n')).expand()
    assert npu.params["backend"] == "npu" and job_key(npu.identity()) != job_key(flat.identity())
    e = fails(tmp_path, MINIMAL_HEAD + "\n[defaults]\nbackend = 'gpu'\n" + BURST + 'runtime = "ort-genai"\n')
    assert e.key == "[defaults] backend" and "ort-genai runs on cpu only" in e.message
    assert "unknown backend 'tpu'" in fails(tmp_path, MINIMAL_HEAD + BURST + 'backend = "tpu"\n').message


def test_quant_must_suit_the_runtime(tmp_path):
    text = MINIMAL_HEAD + "\n[defaults]\nquant = 'int4'\n" + BURST + 'runtimes = ["llama.cpp"]\n'
    e = fails(tmp_path, text)
    assert e.key == "[defaults] quant" and "not a quant of llama.cpp" in e.message and "[[jobs]] #1" in e.message


@pytest.mark.parametrize("where, value, needle", [
    ("select", '["tier=flagship,color=red"]', "bad device filter"),
    ("select", "[]", "must not be empty"),
    ("adb", '["localhost:abc"]', "bad adb server address"),
])
def test_bad_devices(tmp_path, where, value, needle):
    text = MINIMAL_HEAD.replace('select = ["all"]', f'select = ["all"]\n{where} = {value}'
                                if where != "select" else f"select = {value}") + BURST
    e = fails(tmp_path, text)
    assert e.key == f"[devices] {where}" and needle in e.message and e.line == line_of(text, f"{where} =")


def test_bad_job_device_selector(tmp_path):
    text = MINIMAL_HEAD + BURST + 'devices = ["soc"]\n' + BURST + 'devices = ["tier="]\n'
    e = fails(tmp_path, text)
    assert e.key == "[[jobs]] #2 devices" and e.line == line_of(text, "devices =", 2)


def test_bad_duration_string(tmp_path):
    text = MINIMAL_HEAD + '\n[gate]\ncooldown_timeout = "10 minutes"\n' + BURST
    e = fails(tmp_path, text)
    assert e.line == line_of(text, "10 minutes") and "bad duration '10 minutes'" in e.message


def test_shuffle_seed_needs_shuffle(tmp_path):
    e = fails(tmp_path, MINIMAL_HEAD + "\n[run]\nshuffle_seed = 3\n" + BURST)
    assert e.key == "[run] shuffle_seed"


def test_structure_errors(tmp_path):
    assert "at least one [[jobs]]" in fails(tmp_path, MINIMAL_HEAD).message
    assert fails(tmp_path, "version = 1\n" + BURST).key == "devices"
    assert "expected a table" in fails(tmp_path, "gate = 3\n" + MINIMAL_HEAD + BURST).message


def test_dotted_and_quoted_keys_are_located(tmp_path):
    text = MINIMAL_HEAD.replace("version = 1\n", "version = 1\ngate.battery_floor = 500\n") + BURST
    assert fails(tmp_path, text).line == line_of(text, "gate.battery_floor")
    text = MINIMAL_HEAD + '\n[gate]\n"battery_floor" = 500\n' + BURST
    assert fails(tmp_path, text).line == line_of(text, '"battery_floor"')


def test_cli_refuses_a_bad_plan_naming_the_line(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\n[devices]\nselect = ["all"]\n\n[[jobs]]\nscenario = "brst"\nmodels = ["tiny"]\n')
    for args in (["validate", str(bad)], ["run", str(bad)]):
        r = subprocess.run([sys.executable, "-m", "suite.cli.main", "lab", *args], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 2, r.stderr
        assert "bad.toml:6" in r.stderr and "brst" in r.stderr
    good = tmp_path / "good.toml"
    good.write_text('version = 1\n[devices]\nselect = ["all"]\n\n[[jobs]]\nscenario = "burst"\nmodels = ["tiny"]\n')
    r = subprocess.run([sys.executable, "-m", "suite.cli.main", "lab", "validate", str(good)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and "plan is valid" in r.stdout and "1 job" in r.stdout


def test_executorch_and_genie_jobs_take_the_user_s_model_bundle_and_tokenizer(tmp_path):
    (tmp_path / "bundle").mkdir()
    (tmp_path / "q.pte").write_bytes(b"\x20\x00\x00\x00ET12" + b"\x00" * 64)
    (tmp_path / "tokenizer.json").write_text("{}")
    head = MINIMAL_HEAD + '\n[defaults]\nruntime_bundle = "bundle"\n'
    job = '\n[[jobs]]\nscenario = "burst"\nruntime = "executorch"\nmodel_file = "q.pte"\n'
    e = fails(tmp_path, head + job)
    assert e.key == "[[jobs]] #1 tokenizer" and "required for the executorch runtime" in e.message
    (spec,) = load_plan(write(tmp_path, head + job + 'tokenizer = "tokenizer.json"\n')).expand()
    assert spec.runtime == "executorch" and spec.tokenizer == tmp_path.resolve() / "tokenizer.json"
    assert spec.identity()["tokenizer"] == "tokenizer.json" and spec.model_file.name == "q.pte"
    cards = fails(tmp_path, head + '\n[[jobs]]\nscenario = "burst"\nruntime = "executorch"\nmodels = ["llama-68m"]\n'
                  'tokenizer = "tokenizer.json"\n')
    assert "executorch runs your own model (pte): give model_file" in cards.message
    other = fails(tmp_path, MINIMAL_HEAD + BURST + 'runtime = "llama.cpp"\ntokenizer = "tokenizer.json"\n')
    assert other.key == "[[jobs]] #1 tokenizer" and "only for runtimes that take one" in other.message
    # a genie job: its config is the model file; no tokenizer key (the config names its own)
    (tmp_path / "genie_config.json").write_text('{"dialog": {"version": 1}}')
    (g,) = load_plan(write(tmp_path, head + '\n[[jobs]]\nscenario = "burst"\nruntime = "genie"\n'
                                            'model_file = "genie_config.json"\nbackend = "npu"\n')).expand()
    assert g.runtime == "genie" and g.tokenizer is None and g.params["backend"] == "npu"


def test_fit_beyond_ram_and_llama_cpp_s_load_options(tmp_path):
    fit = MINIMAL_HEAD + '\n[[jobs]]\nscenario = "fit"\nmodels = ["tiny", "smollm2-135m"]\nruntime = "llama.cpp"\n'
    plain = load_plan(write(tmp_path, fit)).expand()[0]
    assert not {"beyond_ram", "floor_tps", "rung_timeout_s", "mmap", "repack"} & set(plain.params)
    (job,) = load_plan(write(tmp_path, fit + 'beyond_ram = true\nfloor_tps = 0.5\nrung_timeout = "10m"\n')).expand()
    assert job.params["beyond_ram"] is True and job.params["floor_tps"] == 0.5 and job.params["rung_timeout_s"] == 600
    assert job_key(job.identity()) != job_key(plain.identity())
    e = fails(tmp_path, fit.replace('"llama.cpp"', '"ort-genai"') + "beyond_ram = true\n")
    assert e.key == "[[jobs]] #1 beyond_ram" and "runs llama.cpp" in e.message
    assert "only with beyond_ram = true" in fails(tmp_path, fit + "floor_tps = 2\n").message
    assert "only for scenario 'fit'" in fails(tmp_path, MINIMAL_HEAD + BURST + "beyond_ram = true\n").message
    assert "contradict it" in fails(tmp_path, fit + "beyond_ram = true\nmmap = false\n").message
    (burst,) = load_plan(write(tmp_path, MINIMAL_HEAD + BURST + 'runtime = "llama.cpp"\nmmap = false\n')).expand()
    assert burst.params["mmap"] is False and "repack" not in burst.params
    e = fails(tmp_path, MINIMAL_HEAD + BURST + 'runtime = "ort-genai"\nrepack = false\n')
    assert "a load option of llama.cpp; ort-genai has none" in e.message
