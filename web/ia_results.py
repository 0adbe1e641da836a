"""What a tree test's or first-click test's results page shows beyond the metrics: per task and
design the path tree, first clicks and destinations, or the click map (drawn from the results
document, so the page shows exactly what the API gives)."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from abtest.studies.definition import StudyDef
from abtest.studies.ia import ClickAttempt, screen_from_dict
from abtest.studies.ia_analysis import tree_attempts_from
from web.click_map import click_map
from web.study_images import image_url
from web.tree_chart import path_tree


def ia_views(study: StudyDef, details: Any) -> list[dict[str, Any]]:
    """Per task: its prompt and, per design, the numbers and the drawing (inline SVG)."""
    if details is None or study.method == "usability":
        return []
    names = {v.key: v.name for v in study.variants}
    views = []
    for task_doc in details.tasks:
        task = study.task(task_doc["task"])
        designs = []
        for design, doc in task_doc["designs"].items():
            view = {"key": design, "name": names.get(design) or design, **doc}
            if study.method == "tree-test":
                svg = path_tree(study.tree_of(design), tree_attempts_from(doc["paths"]), task.correct_for(design))
            else:
                screen = screen_from_dict(doc["screen"])
                clicks = [ClickAttempt(x, y, 0.0, ok) for x, y, ok in doc["clicks"]]
                svg = click_map(image_url(screen.image), screen, clicks)
            view["svg"] = Markup(svg) if svg else None  # noqa: S704 - built by our chart modules, labels escaped
            designs.append(view)
        views.append({"key": task.key, "prompt": task.prompt, "designs": designs})
    return views
