"""Importers: other tools' benchmark output turned into edgebench runs (`origin: imported`)."""

from suite.importers.llama_bench import ImportReport, cli_import, import_llama_bench

__all__ = ["ImportReport", "cli_import", "import_llama_bench"]
