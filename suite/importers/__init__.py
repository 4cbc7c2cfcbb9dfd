"""Importers: other tools' benchmark output turned into edgebench runs (`origin: imported`)."""

from suite.importers.llama_bench import (
    BenchRow,
    ImportReport,
    ParseResult,
    Problem,
    cli_import,
    import_llama_bench,
    parse_llama_bench,
)

__all__ = [
    "BenchRow",
    "ImportReport",
    "ParseResult",
    "Problem",
    "cli_import",
    "import_llama_bench",
    "parse_llama_bench",
]
