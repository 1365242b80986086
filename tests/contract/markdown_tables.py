"""Reading a Markdown table out of the documents the contract tests hold the code to."""

from __future__ import annotations


def table_rows(text: str, header: str, document: str) -> list[list[str]]:
    """The rows (cells, stripped) of the one table in `text` whose header line is `header`."""
    lines = text.splitlines()
    assert lines.count(header) == 1, f"{document}: expected one table headed {header!r}"
    rows = []
    for line in lines[lines.index(header) + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows
