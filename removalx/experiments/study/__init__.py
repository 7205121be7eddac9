"""The blind user-rating study of "removal-based video explanations" (Sec. 4.6.2, Fig. 8, Fig. 14).

A panel of raters scores explanations stored in an experiment database, one at a time, on the
paper's question "Do the highlighted regions used in the classification seem reasonable?"
from -2 (strongly disagree) to +2 (strongly agree), in a random order of their own and
without learning the network, the dataset or the method (docs/study.md).

* :mod:`~removalx.experiments.study.db` -- the study tables in the experiment database;
* :mod:`~removalx.experiments.study.order` -- the seeded per-rater order;
* :mod:`~removalx.experiments.study.create` -- ``study create``: items and their media;
* :mod:`~removalx.experiments.study.app` -- ``study serve``: the rating web app (Starlette);
* :mod:`~removalx.experiments.study.results` -- ``study results``: scores and agreement;
* :mod:`~removalx.experiments.study.report` -- the "user study" section of ``removalx report``.

The web app and the agreement statistics need the ``study`` extra
(``pip install removalx[study]``).
"""

from __future__ import annotations

from removalx.errors import MissingExtraError, RemovalxError

__all__ = ["QUESTION", "SCALE", "StudyDependencyError", "StudyError", "require"]

#: The question of the paper's GUI (Sec. 4.6.2), asked verbatim.
QUESTION = "Do the highlighted regions used in the classification seem reasonable?"

#: The answer scale: score and label (the paper names the two ends; the middle labels are ours).
SCALE: list[tuple[int, str]] = [
    (-2, "strongly disagree"),
    (-1, "disagree"),
    (0, "neither agree nor disagree"),
    (1, "agree"),
    (2, "strongly agree"),
]


class StudyError(RemovalxError, ValueError):
    """A study command was given a study, rater, item or answer that does not fit."""


class StudyDependencyError(MissingExtraError):
    """A package of the ``study`` extra (the web app, the agreement statistics) is not installed."""


def require(module: str, what: str) -> None:
    """Import ``module`` or raise :class:`StudyDependencyError` naming the extra to install."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise StudyDependencyError(
            f"{what} needs the Python package {module!r}, which is not installed.",
            "pip install 'removalx[study]'",
        ) from exc
