"""Reference documents generated from the code, so they never drift from it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from customer_equity.schemas.dictionary import data_dictionary
from customer_equity.settings import settings_reference

GENERATED_DOCS: dict[str, Callable[[], str]] = {
    "data_dictionary.md": data_dictionary,
    "configuration.md": settings_reference,
}


def write_docs(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, render in GENERATED_DOCS.items():
        path = folder / name
        path.write_text(render() + "\n", encoding="utf-8")
        written.append(path)
    return written
