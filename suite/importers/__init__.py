"""Importers: other tools' benchmark output turned into edgebench runs (`origin: imported`).

Each importer is registered by name as its `cli_import(files, results_dir, *, device=None) -> int`
(imported on first use); `edgebench import NAME FILE...` is made for every name here.
"""

from suite.core.registry import Registry

IMPORTERS = Registry("importer")
IMPORTERS.add("llama-bench", "suite.importers.llama_bench:cli_import", about="md, csv, json, jsonl, sql")

_LAZY = {"ImportReport", "cli_import", "import_llama_bench"}  # llama-bench's, as before; imported on first use


def __getattr__(name: str):
    if name in _LAZY:
        # lazy: plug-ins are imported on first use (suite/core/registry.py), and this one loads the store,
        # pandas and pyarrow (~0.4 s), which `edgebench` start-up (it imports this package) must not
        from suite.importers import llama_bench

        return getattr(llama_bench, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IMPORTERS", "ImportReport", "cli_import", "import_llama_bench"]
