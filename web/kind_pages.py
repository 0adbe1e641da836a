"""The pages of each kind of test, in one table: where its page, form and install help live and
the words its results use. Views look a kind up here (``PAGES[row.kind]``) instead of testing it,
so a new kind adds one entry (and its templates), and nothing else in the web layer changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from web.study_results import study_context
from web.survey_pages import linked_surveys, survey_context


@dataclass(frozen=True, slots=True)
class KindPages:
    noun: str  # "experiment", "usability study"
    home: str  # endpoint of its own page
    edit: str  # endpoint of its definition form
    install: str  # endpoint of how to take part (snippet help, participant link)
    install_label: str
    results_template: str  # the full results page (the #results fragment is shared)
    no_data_template: str  # what to do while nothing is measured yet
    mode: str | None  # the analysis line under the title (None: from the analysis mode)
    units: str  # who is counted: "units", "participants"
    variant: str  # "variant", "design"
    planned: bool  # whether it states a planned sample
    lifecycle_template: str  # what launching, stopping, archiving does to one
    done: Mapping[str, str]  # what a lifecycle move did, by the status it moved to
    extras: Callable[..., dict[str, Any]] | None = None  # its page's own parts: (row, definition, report, args)
    breakdown: bool = True  # whether its results break down by an attribute (?by=)


PAGES: dict[str, KindPages] = {
    "experiment": KindPages(
        noun="experiment", home="experiments.show", edit="experiments.edit", install="experiments.install",
        install_label="Install snippet", results_template="results/page.html",
        no_data_template="results/_no_data.html", mode=None, units="units", variant="variant", planned=True,
        lifecycle_template="experiments/_lifecycle.html",
        done={"running": "launched: visitors are now being assigned",
              "stopped": "stopped: no new visitors are assigned and its results are final", "archived": "archived"},
        extras=linked_surveys),
    "study": KindPages(
        noun="usability study", home="results.page", edit="study_form.edit", install="studies.consent",
        install_label="Participant link", results_template="studies/results.html",
        no_data_template="studies/_no_data.html", mode="small-sample comparisons between designs",
        units="participants", variant="design", planned=False, lifecycle_template="studies/_lifecycle.html",
        done={"running": "launched: the participant link is open",
              "stopped": "stopped: the participant link is closed and its results are final", "archived": "archived"},
        extras=study_context),
    "survey": KindPages(
        noun="survey", home="results.page", edit="survey_form.edit", install="survey_pages.install",
        install_label="Install", results_template="surveys/results.html", no_data_template="surveys/_no_data.html",
        mode="answers with fixed-sample intervals", units="visitors", variant="variant", planned=False,
        lifecycle_template="surveys/_lifecycle.html",
        done={"running": "launched: the snippet now asks visitors on its pages",
              "stopped": "stopped: nobody is asked any more and its results are final", "archived": "archived"},
        extras=survey_context, breakdown=False),
}
