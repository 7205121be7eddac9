"""The HTML pages a rater sees, rendered on the server (no template engine, no network).

Every page links only to the package's own ``/static/study.css`` and ``/static/study.js``
and to the item's media by opaque id; it names the class, the question and the progress,
never the method, the model, the dataset or a file (the blindness test fetches every page).
"""

from __future__ import annotations

import html
from typing import Any

from removalx.experiments.study import QUESTION, SCALE

__all__ = ["done_page", "item_page", "landing_page", "message_page"]

TITLE = "Explanation rating"


def _page(body: str, title: str = TITLE) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='referrer' content='no-referrer'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><link rel='stylesheet' href='/static/study.css'>"
        "<script src='/static/study.js' defer></script></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _signed(score: int) -> str:
    return f"+{score}" if score > 0 else ("0" if score == 0 else f"−{-score}")


def landing_page(tokens_required: bool) -> str:
    """The start page: a rater id form, or (tokens required) a request to use the invite link."""
    if tokens_required:
        body = (
            "<h1>Explanation rating</h1><p>Open the personal invite link you were given to start or "
            "resume rating.</p>"
        )
    else:
        body = (
            "<h1>Explanation rating</h1><p>Enter your rater id to start, or to resume where you "
            "stopped.</p><form method='post' action='/start' class='start'>"
            "<label for='rater'>Rater id</label> <input id='rater' name='rater' required "
            "maxlength='64' pattern='[A-Za-z0-9_.@\\-]{1,64}' autocomplete='off' autofocus> "
            "<button type='submit' id='start'>Start</button></form>"
            "<p class='note'>Letters, digits and _ . @ - only.</p>"
        )
    return _page(body)


def message_page(title: str, text: str) -> str:
    """A short page for errors and notices (its text is fixed, never user input)."""
    return _page(f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>", title)


def item_page(
    base: str,
    item: dict[str, Any],
    position: int,
    n_items: int,
    n_answered: int,
    answer: int | None,
    prev_id: str | None,
    next_id: str | None,
    finished: bool,
) -> str:
    """The rating page of one item.

    Parameters
    ----------
    base : str
        ``/r/<token>``, the rater's URL prefix.
    item : dict
        ``id``, ``class_name``, ``width``, ``height`` of the item.
    position : int
        1-based place of the item in this rater's order.
    answer : int or None
        The rater's current answer to it.
    """
    iid = html.escape(item["id"])
    buttons = []
    for key, (score, label) in enumerate(SCALE, start=1):
        chosen = " chosen" if answer == score else ""
        pressed = "true" if answer == score else "false"
        disabled = " disabled" if finished else ""
        buttons.append(
            f"<button type='submit' name='score' value='{score}' class='score{chosen}' "
            f"data-key='{key}' aria-pressed='{pressed}'{disabled}>"
            f"<span class='num'>{_signed(score)}</span><span class='lab'>{html.escape(label)}</span>"
            f"<span class='key'>key {key}</span></button>"
        )
    nav = []
    if prev_id:
        nav.append(f"<a id='prev' href='{base}/i/{html.escape(prev_id)}'>← previous</a>")
    if next_id:
        nav.append(f"<a id='next' href='{base}/i/{html.escape(next_id)}'>next →</a>")
    nav.append(f"<a id='overview' href='{base}/done'>overview</a>")
    notice = "<p class='notice'>You have finished: answers can no longer change.</p>" if finished else ""
    body = (
        f"<header><span id='progress'>{position} / {n_items}</span>"
        f"<span id='answered'>answered {n_answered}</span></header>{notice}"
        f"<p class='cls'>Class: <b id='class'>{html.escape(item['class_name'])}</b></p>"
        "<figure class='media'><div class='panels'><span>video</span><span>explanation</span></div>"
        f"<img id='media' src='{base}/media/{iid}' width='{int(item['width'])}' "
        f"height='{int(item['height'])}' alt='the video (left) and the explanation (right)'></figure>"
        "<div class='legend'><span>less important</span>"
        f"<img id='legend' src='{base}/legend/{iid}' alt='colour map'><span>more important</span></div>"
        f"<h2 id='question'>{html.escape(QUESTION)}</h2>"
        f"<form method='post' action='{base}/answer' id='answer'>"
        f"<input type='hidden' name='item' value='{iid}'><div class='scale'>{''.join(buttons)}</div></form>"
        f"<nav>{' '.join(nav)}</nav>"
        "<p class='note'>Keys: 1–5, or −2, −1, 0, +1, +2 (type the sign, then the digit); "
        "← and → move between items.</p>"
    )
    return _page(body)


def done_page(
    base: str, rows: list[tuple[int, str, int | None]], finished: bool, n_answered: int, n_items: int
) -> str:
    """Overview of the rater's items (position, id, answer) with the button that finishes the study."""
    cells = "".join(
        f"<li><a href='{base}/i/{html.escape(iid)}'>{pos}</a> "
        f"<span class='ans'>{'–' if ans is None else _signed(ans)}</span></li>"
        for pos, iid, ans in rows
    )
    if finished:
        action = "<p id='thanks' class='notice'>Thank you: your answers are recorded.</p>"
    elif n_answered == n_items:
        action = (
            f"<form method='post' action='{base}/finish'><p>All {n_items} items are answered. You can "
            "still change any answer above; finishing makes them final.</p>"
            "<button type='submit' id='finish'>Finish</button></form>"
        )
    else:
        action = f"<p>{n_answered} of {n_items} items answered.</p>"
    body = (
        f"<header><span id='progress'>{n_answered} / {n_items}</span></header>"
        f"<h1>Your answers</h1><ol class='overview'>{cells}</ol>{action}"
    )
    return _page(body)
