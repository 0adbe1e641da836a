"""Resolving a first-click test's images before it is parsed (the I/O edge of issue 19).

A definition names each screen's image either by the name the image store gave it (after an
upload: ``POST /api/v1/images`` or the form) or, in a TOML file, by a path relative to that
file (``abtest sync`` stores it). Either way its width and height are read here from the stored
image, never taken from the definition, so a target can be checked against the real image.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from abtest.checks import InvalidDefinition
from abtest.errors import ValidationError
from abtest.studies.images import NAME_PATTERN, ImageStore, import_file


def _screens(raw: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Each screen table of a first-click definition with its field prefix (copied, to be filled)."""
    out = []
    tasks = raw.get("tasks")
    if not isinstance(tasks, list):
        return out
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            continue
        screens = task.get("screens")
        if isinstance(screens, Mapping):
            for design, screen in screens.items():
                if isinstance(screen, Mapping):
                    out.append((f"tasks[{i}].screens.{design}", screen))  # type: ignore[arg-type]
        elif "image" in task:
            out.append((f"tasks[{i}]", task))
    return out


def resolve_images(raw: Any, store: ImageStore, base: Path | None = None, source: str | None = None) -> Any:
    """``raw`` with every first-click screen's ``image`` a stored name and its true ``width`` and
    ``height`` filled in. A path is read relative to ``base`` (a TOML file's folder) and stored;
    without ``base`` only stored names are accepted. Other definitions come back unchanged."""
    if not isinstance(raw, Mapping) or raw.get("kind") != "study" or raw.get("method") != "first-click":
        return raw
    raw = _copy(raw)
    errors: list[ValidationError] = []
    for where, screen in _screens(raw):
        image = screen.get("image")
        if not isinstance(image, str):
            continue  # the parser names the problem
        screen.pop("width", None)
        screen.pop("height", None)
        try:
            if NAME_PATTERN.fullmatch(image):
                stored = store.info(image)
                if stored is None:
                    raise ValidationError(f"{image!r} is not a stored image: upload it first (POST /api/v1/images)",
                                          field="image")
            elif base is not None:
                stored = import_file(store, base / image)
            else:
                raise ValidationError(f"{image!r} is not a stored image name: upload the file first "
                                      "(POST /api/v1/images) and give the name it answers", field="image")
        except ValidationError as exc:
            errors.append(ValidationError(exc.message, field=f"{where}.image"))
            continue
        screen.update(image=stored.name, width=stored.width, height=stored.height)
    if errors:
        raise InvalidDefinition(errors, source)
    return raw


def _copy(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy deep enough that filling screens never changes the caller's tables."""
    out = dict(raw)
    if isinstance(out.get("tasks"), list):
        out["tasks"] = [dict(t) if isinstance(t, Mapping) else t for t in out["tasks"]]
        for task in out["tasks"]:
            if isinstance(task, dict) and isinstance(task.get("screens"), Mapping):
                task["screens"] = {k: dict(v) if isinstance(v, Mapping) else v for k, v in task["screens"].items()}
    return out
