"""The registry of definition kinds (DESIGN §8): ``KINDS[kind]`` gives a kind's parser, update
rule, storage, analysis and document. The API, CLI, sync and pages dispatch through it; a new
kind of test (a survey, a tree test …) is a new module and one line here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from abtest.checks import InvalidDefinition, root_table
from abtest.errors import NotFound, ValidationError
from abtest.kinds.base import Kind
from abtest.kinds.experiment import ExperimentKind
from abtest.kinds.study import StudyKind
from abtest.kinds.survey import SurveyKind

KINDS: dict[str, Kind] = {k.name: k for k in (ExperimentKind(), StudyKind(), SurveyKind())}
DEFAULT_KIND = "experiment"


def kind_of(raw: Any, source: str | None = None) -> Kind:
    """The kind a raw definition names (``kind``, default an experiment), or an error naming ``kind``."""
    name = root_table(raw, source).get("kind", DEFAULT_KIND)
    if not isinstance(name, str) or name not in KINDS:
        raise InvalidDefinition([ValidationError(f"{name!r} is not a kind of test; use one of {', '.join(KINDS)}",
                                                 field="kind")], source)
    return KINDS[name]


def parse_definition(raw: Any, source: str | None = None) -> Any:
    """Validate a definition of any kind; raise InvalidDefinition listing every problem."""
    return kind_of(raw, source).parse(raw, source)


def load_toml(path: Path, images: Any = None) -> Any:
    """Read and validate one TOML file; errors carry the file name as their source. ``images``
    (an :class:`~abtest.studies.images.ImageStore`) stores the screens a first-click test names
    by a path relative to the file."""
    try:
        with path.open("rb") as handle:
            raw = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidDefinition([ValidationError(f"invalid TOML: {exc}", field="(file)")], str(path)) from exc
    except UnicodeDecodeError as exc:
        raise InvalidDefinition([ValidationError(f"not UTF-8 text (byte {exc.start})", field="(file)")],
                                str(path)) from exc
    except RecursionError as exc:
        raise InvalidDefinition([ValidationError("invalid TOML: nested too deeply", field="(file)")],
                                str(path)) from exc
    except ValueError as exc:  # an integer of more than 4300 digits, which Python will not read
        raise InvalidDefinition([ValidationError(f"invalid TOML: {str(exc).split(';')[0]}", field="(file)")],
                                str(path)) from exc
    except OSError as exc:
        raise InvalidDefinition([ValidationError(f"cannot read: {exc.strerror}", field="(file)")], str(path)) from exc
    if images is not None:
        from abtest.studies.screens import resolve_images

        raw = resolve_images(raw, images, base=path.parent, source=str(path))
    return parse_definition(raw, source=str(path))


def snippet_kinds() -> tuple[str, ...]:
    """The kinds a public key reaches (config, assign, events): every public route asks this."""
    return tuple(name for name, kind in KINDS.items() if kind.snippet)


def require_snippet_kind(kind: str, key: str) -> None:
    """A public route on a test of another kind answers as for an unknown key: nothing leaks."""
    if not KINDS[kind].snippet:
        raise NotFound(f"no running experiment with key {key!r}", field="experiment")


def to_toml(definition: Any) -> str:
    """A stored definition as a TOML file for ``experiments/`` (what ``abtest sync`` reads back
    unchanged); empty values are left out."""
    import tomli_w

    def prune(value: Any) -> Any:
        if isinstance(value, dict):
            pruned = {k: prune(v) for k, v in value.items()}
            return {k: v for k, v in pruned.items() if v not in (None, "", [], {})}
        if isinstance(value, list):
            return [prune(v) for v in value]
        return value

    document = prune(KINDS[definition.kind].document(definition))
    # tomli_w writes short tables inline; lists of tables (variants, metrics, a study's designs and
    # tasks) read better as [[variants]] blocks, the shape of DESIGN §4.2.
    lists = {name: document.pop(name) for name in list(document)
             if isinstance(document[name], list) and all(isinstance(item, dict) for item in document[name])}
    chunks = [tomli_w.dumps(document)]
    for name, tables in lists.items():
        chunks.extend(f"\n[[{name}]]\n{tomli_w.dumps(table)}" for table in tables)
    return "".join(chunks)
