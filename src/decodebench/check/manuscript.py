"""Rule manuscript: numbers typed by hand into the paper's sources.

Measured values reach the paper through ``paper/generated/`` (tables, figures, numbers.tex
macros). A number typed into ``paper/**/*.tex``, into a file those sources ``\\input`` from
outside ``paper/``, or into a template under ``templates/`` (captions) is a second copy that
no re-rendering updates; one that looks measured is an error at its file and line.

The sources are read as one stream per file (comments removed, lines joined, so a number split
across lines is still one number) and tokenized into *quantities*: a number followed by a unit.

Numbers: ``1.39``, ``+0.45``, ``5,853`` and ``5{,}853`` (thousands separators), siunitx's
``\\num{1.86}``, ``\\SI{5853.3}{MB}`` and ``\\qty{39.6}{\\percent}``, and a macro the manuscript
itself defines as a number (``\\newcommand{\\speedup}{1.39}`` ... ``\\speedup\\times``).

Units (after LaTeX glue: spaces, ``~``, ``\\,``, ``$``, ``\\(``, braces):
    speedup      ``\\times``, ``×``, ``x`` glued to the number (``1.4x``), the word ``times``
    percent      ``\\%``, ``percent``, ``\\percent``
    memory       B, KB, KiB, MB, MiB, GB, GiB, TB, siunitx ``\\mega\\byte`` ...
    time         ms, s, µs, seconds, milliseconds, siunitx ``\\milli\\second`` ...
    throughput   tokens/s, tok/s, tokens per second

A quantity is *descriptive* (not reported) when
    product      a number follows the speedup sign: ``2 \\times 2``
    hardware     a speedup or memory quantity is followed at once by a hardware or model noun
                 (``8$\\times$ A100``, ``an 80 GB GPU``, ``1.5 GB checkpoint``; HARDWARE_NOUNS), or
                 a memory quantity comes right after one (``H100 80GB``)
    size         a speedup is followed by a size comparative (``40\\times larger``; SIZE_WORDS)
    level        a percent is followed by a statistical level or a share of a distribution
                 (``95\\% confidence``, ``95\\,\\% bootstrap interval``, ``99.5\\% of the mass``;
                 LEVEL_WORDS, after an optional "of the" / "of its" and "probability")
    count        an integer with the word ``times`` not followed (in the same clause) by a
                 comparative (``each prompt is measured 3 times``; COMPARATIVES)
Everything else with a unit looks measured. A line that states a number on purpose says why:
``% decodebench: not-measured <reason>`` exempts the quantities on that line; the marker
without a reason is itself an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .report import Report

PAPER = Path("paper")
GENERATED = Path("paper/generated")
TEMPLATES = Path("templates")

HARDWARE_NOUNS = {
    "gpu", "gpus", "cpu", "cpus", "tpu", "tpus", "core", "cores", "node", "nodes", "card", "cards", "device",
    "devices", "accelerator", "accelerators", "machine", "machines", "server", "servers", "a100", "a100s",
    "h100", "h100s", "h200", "h200s", "v100", "v100s", "a10", "a10g", "l4", "l40", "l40s", "t4", "a6000", "rtx",
    "nvidia", "amd", "mi250", "mi300", "mi300x", "checkpoint", "checkpoints", "model", "models", "parameters",
    "params", "weights", "ram", "vram", "hbm", "disk", "ssd", "memory-card", "dimm", "dimms",
}
SIZE_WORDS = {"larger", "smaller", "bigger", "wider", "deeper", "narrower", "shallower", "the size", "the parameters",
              "more parameters", "fewer parameters", "as large", "as big", "as wide", "as deep", "the width",
              "the depth"}
LEVEL_WORDS = {"confidence", "interval", "intervals", "ci", "cis", "bootstrap", "quantile", "quantiles",
               "percentile", "percentiles", "significance", "level", "credible", "mass", "distribution",
               "vocabulary", "nucleus"}
COMPARATIVES = {"faster", "slower", "higher", "lower", "more", "less", "fewer", "greater", "smaller", "larger",
                "as", "the", "speedup", "throughput", "quicker", "better", "worse"}

_SIGN = r"[+\-−]?"
_DIGITS = r"(?:\d{1,3}(?:(?:,|\{,\})\d{3})+|\d+)(?:\.\d+)?|\.\d+"
# LaTeX between a number and its unit, or a unit and the next word
_GLUE = r"(?:\s|~|\\[,;:! ]|\\(?:thinspace|enspace|quad)\b|\{\}|\$|\\\(|\\\)|\{|\})*"
_SI = re.compile(rf"\\(?P<cmd>num|SI|qty)\s*(?:\[[^\]]*\])?\s*\{{\s*(?P<n>{_SIGN}(?:{_DIGITS}))\s*\}}"
                 rf"(?:\s*\{{(?P<u>(?:[^{{}}]|\{{[^{{}}]*\}})*)\}})?")
_UNITS = [
    ("speedup", r"\\times\b|\\texttimes\b|×|(?<=\d)[xX]\b|times\b"),
    ("percent", r"\\%|\\percent\b|percent\b|per\s+cent\b"),
    ("throughput", r"(?:tokens?|tok)\s*(?:/|\\slash\s*|\s+per\s+)\s*(?:s|sec|second)\b"),
    ("memory", r"[KMGT]i?B\b|B\b|bytes?\b|\\(?:kilo|mega|giga|tera|kibi|mebi|gibi|tebi)\\byte\b"),
    ("time", r"ms\b|µs\b|s\b|sec\b|seconds?\b|milliseconds?\b|\\(?:milli|micro)?\\second\b"),
]
_UNIT = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _UNITS))
_WORDS = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_NEWCOMMAND = re.compile(r"\\(?:(?:re|provide)?newcommand\*?\s*\{?\s*|def\s*)\\(?P<name>[A-Za-z]+)\s*\}?\s*"
                         rf"\{{\s*(?P<body>{_SIGN}(?:{_DIGITS}))\s*\}}")
_INPUT = re.compile(r"\\(?:input|include|subfile)\s*\{([^}]+)\}")
_EXEMPT = re.compile(r"(?<!\\)%\s*decodebench:\s*not-measured\b(?P<reason>.*)$")
_COMMENT = re.compile(r"(?<!\\)%.*$")
_JINJA = re.compile(r"\\#\{.*?\}|\\(?:VAR|BLOCK)\{(?:[^{}]|\{[^{}]*\})*\}|^\s*%#.*$", re.DOTALL | re.MULTILINE)


@dataclass(frozen=True)
class Quantity:
    number: str  # as typed (or the macro's name)
    unit: str  # speedup | percent | memory | time | throughput
    text: str  # the whole quantity as typed, whitespace collapsed
    start: int  # offset in the stream
    end: int
    why_descriptive: str | None  # None: looks measured


def _unit_of_si(text: str) -> str | None:
    """The kind of an siunitx unit argument (``MB``, ``\\mega\\byte``, ``\\percent``, ``tokens/s``)."""
    m = _UNIT.fullmatch(text.strip())
    if m:
        return m.lastgroup
    low = text.lower()
    for kind, words in (("percent", ("percent", "\\%")), ("throughput", ("token",)), ("memory", ("byte",)),
                        ("time", ("second",))):
        if any(w in low for w in words):
            return kind
    return "memory" if re.fullmatch(r"\s*[kmgt]i?b\s*", low) else None


def _next_words(stream: str, pos: int, n: int = 3) -> list[str]:
    """The next n words after pos (LaTeX commands and glue skipped), lower-cased."""
    rest = re.sub(r"\\[A-Za-z]+\s*|[{}$~]|\\[,;:!() ]", " ", stream[pos:pos + 160])
    return [w.lower() for w in _WORDS.findall(rest)[:n]]


def _previous_word(stream: str, start: int) -> str:
    words = _WORDS.findall(re.sub(r"\\[A-Za-z]+\s*|[{}$~()]|\\[,;:! ]", " ", stream[max(0, start - 40):start]))
    return words[-1].lower() if words else ""


def _descriptive(stream: str, number: str, unit: str, start: int, end: int) -> str | None:
    """Why a quantity is descriptive (module docstring), or None when it looks measured."""
    after = stream[end:end + 40]
    if unit == "speedup" and re.match(rf"{_GLUE}{_SIGN}\d", after):
        return "product"
    words = _next_words(stream, end)
    first = words[0] if words else ""
    two = " ".join(words[:2])
    if unit in ("speedup", "memory") and first in HARDWARE_NOUNS:
        return "hardware"
    if unit == "memory" and _previous_word(stream, start) in HARDWARE_NOUNS:
        return "hardware"  # "an H100 80 GB", "A100 (40 GB)"
    if unit == "speedup" and (first in SIZE_WORDS or two in SIZE_WORDS):
        return "size"
    if unit == "percent":
        rest = words[2:] if words[:1] == ["of"] and len(words) > 1 else words
        rest = rest[1:] if rest[:1] == ["probability"] else rest
        if (rest and rest[0] in LEVEL_WORDS) or first in LEVEL_WORDS:
            return "level"
    if unit == "speedup" and re.fullmatch(rf"{_SIGN}\d+", number) and re.match(r"times\b", stream[end - 5:end]) \
            and (first not in COMPARATIVES or not re.match(r"\s*[A-Za-z]", after)):
        return "count"
    return None


def number_macros(text: str) -> dict[str, str]:
    """Macros defined as a bare number (``\\newcommand{\\speedup}{1.39}``): name -> number."""
    return {m.group("name"): m.group("body") for m in _NEWCOMMAND.finditer(text)}


def quantities(stream: str, macros: dict[str, str] | None = None) -> list[Quantity]:
    """Every number followed by a unit in a comment-free stream of LaTeX."""
    names = "|".join(sorted(map(re.escape, macros or {}), key=len, reverse=True))
    number = re.compile(rf"(?<![\w.\\}}]){_SIGN}(?:{_DIGITS})(?!\.?\d)"
                        + (rf"|\\(?P<macro>{names})(?![A-Za-z])(?:\{{\}})?" if names else ""))
    found = []
    spans = []
    for m in _SI.finditer(stream):
        spans.append((m.start(), m.end()))
        unit = _unit_of_si(m.group("u")) if m.group("u") is not None else None
        end = m.end()
        if unit is None:  # \num{1.86}\(\times\): the unit follows
            u = re.compile(_GLUE + rf"(?:{_UNIT.pattern})").match(stream, end)
            if u is None:
                continue
            unit, end = _unit_kind(u), u.end()
        found.append(_quantity(stream, m.group("n"), unit, m.start(), end))
    for m in number.finditer(stream):
        if any(a <= m.start() < b for a, b in spans):
            continue
        glue = re.compile(_GLUE).match(stream, m.end())
        assert glue is not None  # _GLUE matches the empty string
        u = _UNIT.match(stream, glue.end())
        if u is None:
            continue
        if u.lastgroup in ("time", "memory") and u.group(0) in ("s", "B") and glue.end() == m.end():
            continue  # "1990s", "7B": a plain letter glued to a number is no unit of these kinds
        if u.group(0) in ("x", "X") and glue.end() != m.end():
            continue  # "2 x" (a variable), only "2x" is a factor
        macro = m.groupdict().get("macro")
        text = macros[macro] if macro and macros else m.group(0)
        found.append(_quantity(stream, text, _unit_kind(u), m.start(), u.end()))
    return sorted(found, key=lambda q: q.start)


def _unit_kind(m: re.Match[str]) -> str:
    """The kind of a _UNIT match: the name of the alternative that matched (each one is named)."""
    assert m.lastgroup is not None
    return m.lastgroup


def _quantity(stream: str, number: str, unit: str, start: int, end: int) -> Quantity:
    return Quantity(number, unit, " ".join(stream[start:end].split()), start, end,
                    _descriptive(stream, number, unit, start, end))


def _strip(text: str, template: bool) -> tuple[str, dict[int, str | None]]:
    """The stream (comments removed, jinja removed from templates, line breaks kept) and the
    lines with an exemption marker: line -> reason (None: the marker has no reason)."""
    if template:  # keep the line count: replace jinja by blanks of the same newlines
        text = _JINJA.sub(lambda m: " " + "\n" * m.group(0).count("\n"), text)
    lines, exempt = [], {}
    for n, line in enumerate(text.split("\n"), 1):
        if m := _EXEMPT.search(line):
            exempt[n] = m.group("reason").strip(" :-—") or None
        lines.append(_COMMENT.sub("", line))
    return "\n".join(lines), exempt


def _inputs(path: Path, text: str) -> list[Path]:
    """Files a LaTeX source \\input's (relative to its directory, like latexmk -cd; .tex added)."""
    out = []
    for name in _INPUT.findall(text):
        p = Path(name.strip())
        p = p if p.is_absolute() else path.parent / p
        out.append(p if p.suffix else p.with_suffix(".tex"))
    return out


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path.resolve())


def manuscript_files(root: Path) -> list[tuple[Path, bool]]:
    """(file, is a template): paper/**/*.tex outside generated/ and build/, what they \\input
    from outside paper/ (recursively), and templates/*.tex."""
    paper = (root / PAPER).resolve()
    skip = [(root / GENERATED).resolve(), (root / PAPER / "build").resolve()]
    todo = sorted(p.resolve() for p in paper.rglob("*.tex")) if paper.is_dir() else []
    todo = [p for p in todo if not any(p.is_relative_to(s) for s in skip)]
    seen, files = set(todo), []
    while todo:
        path = todo.pop(0)
        files.append((path, False))
        for inc in _inputs(path, _strip(path.read_text(encoding="utf-8", errors="replace"), False)[0]):
            inc = inc.resolve()
            if inc in seen or not inc.is_file() or any(inc.is_relative_to(s) for s in skip):
                continue
            seen.add(inc)
            todo.append(inc)
    templates = root / TEMPLATES
    if templates.is_dir():
        files += [(p.resolve(), True) for p in sorted(templates.glob("*.tex"))]
    return files


def rule_manuscript(root: Path, report: Report) -> None:
    files = manuscript_files(root)
    streams = {path: _strip(path.read_text(encoding="utf-8", errors="replace"), template) for path, template in files}
    macros: dict[str, str] = {}
    for path, template in files:
        if not template:
            macros.update(number_macros(streams[path][0]))
    for path, _ in files:
        rel = _display(path, root)
        report.ran(rel, "manuscript")
        stream, exempt = streams[path]
        for n, reason in sorted(exempt.items()):
            if reason is None:
                report.error(rel, "manuscript", "'% decodebench: not-measured' without a reason (expected "
                                                "'% decodebench: not-measured <why this number is not a "
                                                "measurement>')", line=n)
        for q in quantities(stream, macros):
            if q.why_descriptive:
                continue
            first, last = stream.count("\n", 0, q.start) + 1, stream.count("\n", 0, q.end) + 1
            if any(exempt.get(n) for n in range(first, last + 1)):
                continue
            where = f" (split over lines {first}-{last})" if last > first else ""
            report.error(rel, "manuscript",
                         f"{q.unit} typed by hand{where} (expected a macro from {GENERATED}/numbers.tex or an "
                         f"\\input generated table, or '% decodebench: not-measured <reason>' on the line when "
                         f"it is not a measurement; found {q.text!r})", line=first)
