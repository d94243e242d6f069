"""The registry as a reader sees it: ``audio-pipeline features`` and the table in ``docs/store.md``."""

from __future__ import annotations

from .registry import STFT_FRAMING, Family, Variable, all_families

__all__ = ["BEGIN", "END", "format_families", "markdown_table", "with_table"]

#: the markers of the generated table in a Markdown file (docs/store.md, docs/features.md)
BEGIN = "<!-- families-table: generated from the registry (python -m pipeline.families.listing FILE...) -->"
END = "<!-- /families-table -->"


def _dims(fam: Family, var: Variable) -> str:
    return "(" + ", ".join(fam.dims(var)) + ")"


def _variables(fam: Family) -> str:
    return "; ".join(f"`{v.name}` {_dims(fam, v)} {v.units}" for v in fam.variables)


def _origin(fam: Family) -> str:
    if "source_sha256" in fam.origin:
        return f"plugin {fam.origin['module']} (source sha256 {fam.origin['source_sha256'][:12]})"
    return "built-in"


def format_families() -> str:
    """Every registered family: name, version, default or not, variables with dims and units,
    framing, the intermediates it consumes, its reference definition and where it comes from."""
    lines: list[str] = []
    for fam in all_families():
        default = ", default" if fam.default else ""
        lines.append(f"{fam.name} (v{fam.version}{default}; {_origin(fam)})")
        lines.extend(f"  {var.name:<22} {_dims(fam, var):<34} {var.units}" for var in fam.variables)
        if fam.framing is not STFT_FRAMING:
            lines.append(f"  framing: {fam.framing.description}")
        if fam.consumes:
            lines.append(f"  consumes: {', '.join(fam.consumes)}")
        lines.append(f"  reference: {fam.reference}")
    return "\n".join(lines)


def markdown_table() -> str:
    """The built-in families as the Markdown table of ``docs/store.md`` (between its markers)."""
    rows = ["| family | variables (dims, units) | reference | default |", "|---|---|---|---|"]
    for fam in all_families():
        if "source_sha256" in fam.origin:
            continue
        framing = "" if fam.framing is STFT_FRAMING else f" Own framing: {fam.framing.description}."
        rows.append(f"| `{fam.name}` | {_variables(fam)} | `{fam.reference}`{framing} | {'yes' if fam.default else ''} |")
    return "\n".join(rows)


def with_table(text: str) -> str:
    """``text`` with the table between :data:`BEGIN` and :data:`END` replaced by the current one."""
    head, sep, rest = text.partition(BEGIN)
    if not sep or END not in rest:
        raise ValueError(f"Expected the markers {BEGIN} and {END}")
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{markdown_table()}\n{END}{tail}"


if __name__ == "__main__":  # rewrite the tables of the given Markdown files
    import sys

    for path in sys.argv[1:]:
        with open(path, encoding="utf-8") as fh:
            old = fh.read()
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(with_table(old))
