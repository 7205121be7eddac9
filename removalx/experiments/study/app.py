"""``removalx study serve``: the rating web app (Starlette, served by uvicorn).

Security (docs/study.md):

* every study route is under ``/r/<token>/``: the rater's random token is checked on every
  request (unknown or malformed: 404); raters get a token from ``study create --raters`` (an
  invite link) or, when tokens are not required (the server listens on a loopback address
  only), by entering a rater id on the start page (never the id of an invited rater: they
  enter by their link only);
* a request body is read up to 4 KB: a longer ``Content-Length`` is refused unread, a longer
  (or chunked) body is abandoned as soon as it passes the limit (413);
* media are served by opaque random item id, never by path; answers are validated
  (an integer -2..+2, an item of this study, a rater who has not finished);
* the ``Host`` header must name the server (no DNS rebinding) and a ``POST`` from another
  origin is refused; pages forbid every source but the server itself (Content-Security-Policy),
  send no referrer and are not cached;
* ``/static/study.css`` and ``/static/study.js`` are the only routes without a token: two
  fixed files of the package, the same for every study.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from removalx.experiments.study import StudyError, require
from removalx.experiments.study.create import RATER_CHARS
from removalx.experiments.study.db import StudyDB
from removalx.experiments.study.order import rater_order
from removalx.experiments.study.pages import done_page, item_page, landing_page, message_page

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["LOOPBACK", "make_app"]

#: Host names that are this machine only.
LOOPBACK = ("127.0.0.1", "localhost", "::1")

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
ITEM_RE = re.compile(r"^[0-9a-f]{16}$")
MAX_BODY = 4096

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'self'; script-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _static(name: str) -> bytes:
    return resources.files("removalx.experiments.study").joinpath("static", name).read_bytes()


def _response(content: bytes | None, media_type: str | None = None, status: int = 200) -> Response:
    from starlette.responses import Response

    return Response(content, status_code=status, media_type=media_type, headers=HEADERS)


def _html(text: str, status: int = 200) -> Response:
    from starlette.responses import HTMLResponse

    return HTMLResponse(text, status_code=status, headers=HEADERS)


def _redirect(url: str) -> Response:
    from starlette.responses import RedirectResponse

    return RedirectResponse(url, status_code=303, headers=HEADERS)


def _error(status: int, title: str, text: str) -> Response:
    return _html(message_page(title, text), status)


def _not_found() -> Response:
    return _error(404, "Not found", "This link is not valid. Use the invite link you were given.")


def _refused() -> Response:
    return _error(403, "Refused", "Requests from other sites are refused.")


def _finished() -> Response:
    return _error(409, "Finished", "You have finished the study: answers can no longer change.")


def _next_unanswered(base: str, ids: list[str], answered: dict[str, int]) -> Response:
    """Redirect to the first of ``ids`` not answered yet, or to the end page when all are."""
    for iid in ids:
        if iid not in answered:
            return _redirect(f"{base}/i/{iid}")
    return _redirect(f"{base}/done")


def _same_origin(request: Request) -> bool:
    # Browsers say where a request comes from in Sec-Fetch-Site; with "no-referrer" pages
    # Chromium sends "Origin: null" on same-origin form posts, so Origin is the fallback only.
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin != "null" and urlsplit(origin).netloc == request.headers.get("host", "")


class _TooLarge(Exception):
    """A request body longer than :data:`MAX_BODY` (answered 413)."""


async def _capped_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The request body, read chunk by chunk and abandoned once it passes ``limit`` bytes.

    A declared ``Content-Length`` over ``limit`` (or not a number) is refused before anything
    is read; a body without one (chunked) or longer than declared is read only up to
    ``limit + 1`` bytes. So a huge body never grows the server's memory (:class:`_TooLarge`).
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge
    return bytes(body)


def _too_large() -> Response:
    return _error(413, "Too large", f"A request to this study carries at most {MAX_BODY} bytes.")


async def _form(request: Request) -> dict[str, str] | None:
    """The fields of a form post (``None`` if malformed); :class:`_TooLarge` past :data:`MAX_BODY`."""
    body = await _capped_body(request)
    try:
        parsed = parse_qs(
            body.decode("ascii"), keep_blank_values=True, max_num_fields=4, strict_parsing=False
        )
    except (UnicodeDecodeError, ValueError):
        return None
    return {k: v[0] for k, v in parsed.items() if len(v) == 1}


def _invited(study: dict[str, Any], raters: list[dict[str, Any]]) -> set[str]:
    """Rater ids invited by ``study create --raters``: they enter by their invite link only.

    Studies record them in their arguments (``invited``); older ones wrote invited raters in
    the same transaction as the study, so with the study's own creation time.
    """
    listed = study.get("args", {}).get("invited")
    if isinstance(listed, list):
        return {str(r) for r in listed}
    return {str(r["rater"]) for r in raters if r["created"] == study["created"]}


class _StudyPages:
    """The request handlers of one study: each method is one route's endpoint."""

    def __init__(self, sdb: StudyDB, name: str, tokens_required: bool) -> None:
        self.sdb, self.name, self.tokens_required = sdb, name, tokens_required
        self.study = sdb.study(name)
        self.items = sdb.items(name)
        if not self.items:
            raise StudyError(f"Study {name[:60]!r} has no items.", "Create it again with videos to rate.")
        self.by_id = {it["id"]: it for it in self.items}
        self.invited = _invited(self.study, sdb.raters(name))
        self.css, self.js = _static("study.css"), _static("study.js")

    # -- lookups ---------------------------------------------------------------------------

    def rater_of(self, request: Request) -> dict[str, Any] | None:
        token = request.path_params.get("token", "")
        if not TOKEN_RE.match(token):
            return None
        return self.sdb.rater_by_token(self.name, token)

    def known_item(self, iid: str) -> bool:
        return bool(ITEM_RE.match(iid)) and iid in self.by_id

    def order_of(self, rater: str) -> list[dict[str, Any]]:
        return [self.items[i] for i in rater_order(int(self.study["seed"]), rater, len(self.items))]

    def answers_of(self, rater: str) -> dict[str, int]:
        return {a["item_id"]: int(a["score"]) for a in self.sdb.answers(self.name, rater)}

    # -- routes ----------------------------------------------------------------------------

    async def landing(self, request: Request) -> Response:
        return _html(landing_page(self.tokens_required))

    async def start(self, request: Request) -> Response:
        if self.tokens_required:
            return _error(
                403, "Invite link required", "This study is rated through personal invite links only."
            )
        if not _same_origin(request):
            return _refused()
        try:
            data = await _form(request)
        except _TooLarge:
            return _too_large()
        rater = (data or {}).get("rater", "").strip()
        if not 1 <= len(rater) <= 64 or not set(rater) <= RATER_CHARS:
            return _error(400, "Invalid rater id", "Use 1 to 64 letters, digits or _ . @ - as rater id.")
        if rater in self.invited:
            return _error(
                403,
                "Invite link required",
                "This rater id has a personal invite link: open the study with it.",
            )
        token = self.sdb.add_rater(self.name, rater)
        return _redirect(f"/r/{token}/")

    async def resume(self, request: Request) -> Response:
        r = self.rater_of(request)
        if r is None:
            return _not_found()
        answered = self.answers_of(r["rater"])
        ids = [it["id"] for it in self.order_of(r["rater"])]
        return _next_unanswered(f"/r/{r['token']}", ids, answered)

    async def item(self, request: Request) -> Response:
        r = self.rater_of(request)
        iid = request.path_params.get("item", "")
        if r is None or not self.known_item(iid):
            return _not_found()
        ids = [it["id"] for it in self.order_of(r["rater"])]
        pos = ids.index(iid)
        answered = self.answers_of(r["rater"])
        return _html(
            item_page(
                f"/r/{r['token']}",
                self.by_id[iid],
                pos + 1,
                len(ids),
                len(answered),
                answered.get(iid),
                ids[pos - 1] if pos > 0 else None,
                ids[pos + 1] if pos + 1 < len(ids) else None,
                r["finished"] is not None,
            )
        )

    def media_route(self, kind: str, mime: str) -> Any:
        async def handler(request: Request) -> Response:
            r = self.rater_of(request)
            iid = request.path_params.get("item", "")
            if r is None or not self.known_item(iid):
                return _not_found()
            data = self.sdb.media(self.name, iid, kind)
            if data is None:  # pragma: no cover - an item of the study has media
                return _not_found()
            return _response(data, mime)

        return handler

    async def answer(self, request: Request) -> Response:
        r = self.rater_of(request)
        if r is None:
            return _not_found()
        if not _same_origin(request):
            return _refused()
        try:
            data = await _form(request)
        except _TooLarge:
            return _too_large()
        if data is None:
            return _error(400, "Invalid answer", "Send one item and one score.")
        iid, raw = data.get("item", ""), data.get("score", "")
        if not self.known_item(iid):
            return _error(400, "Invalid answer", "This item is not part of the study.")
        if raw not in ("-2", "-1", "0", "1", "2", "+1", "+2"):
            return _error(400, "Invalid answer", "A score is a whole number from -2 to +2.")
        if r["finished"] is not None:
            return _finished()
        try:
            self.sdb.put_answer(self.name, r["rater"], iid, int(raw))
        except StudyError:
            return _finished()
        answered = self.answers_of(r["rater"])
        order = [it["id"] for it in self.order_of(r["rater"])]
        pos = order.index(iid)
        # the next unanswered item after this one
        return _next_unanswered(f"/r/{r['token']}", order[pos + 1 :] + order[:pos], answered)

    async def done(self, request: Request) -> Response:
        r = self.rater_of(request)
        if r is None:
            return _not_found()
        answered = self.answers_of(r["rater"])
        rows = [(i + 1, it["id"], answered.get(it["id"])) for i, it in enumerate(self.order_of(r["rater"]))]
        return _html(
            done_page(f"/r/{r['token']}", rows, r["finished"] is not None, len(answered), len(self.items))
        )

    async def finish(self, request: Request) -> Response:
        r = self.rater_of(request)
        if r is None:
            return _not_found()
        if not _same_origin(request):
            return _refused()
        if len(self.answers_of(r["rater"])) < len(self.items):
            return _error(409, "Not yet", "Answer every item before finishing.")
        self.sdb.finish(self.name, r["rater"])
        return _redirect(f"/r/{r['token']}/done")

    async def static_css(self, request: Request) -> Response:
        return _response(self.css, "text/css")

    async def static_js(self, request: Request) -> Response:
        return _response(self.js, "text/javascript")

    async def no_icon(self, request: Request) -> Response:
        return _response(None, status=204)

    def routes(self) -> list[Any]:
        from starlette.routing import Route

        return [
            Route("/", self.landing, methods=["GET"]),
            Route("/favicon.ico", self.no_icon, methods=["GET"]),
            Route("/start", self.start, methods=["POST"]),
            Route("/static/study.css", self.static_css, methods=["GET"]),
            Route("/static/study.js", self.static_js, methods=["GET"]),
            Route("/r/{token}/", self.resume, methods=["GET"]),
            Route("/r/{token}/i/{item}", self.item, methods=["GET"]),
            Route("/r/{token}/media/{item}", self.media_route("media", "image/gif"), methods=["GET"]),
            Route("/r/{token}/legend/{item}", self.media_route("legend", "image/png"), methods=["GET"]),
            Route("/r/{token}/answer", self.answer, methods=["POST"]),
            Route("/r/{token}/done", self.done, methods=["GET"]),
            Route("/r/{token}/finish", self.finish, methods=["POST"]),
        ]


def make_app(db: str, name: str, *, tokens_required: bool = False, hosts: list[str] | None = None) -> Any:
    """The ASGI app serving study ``name`` of database ``db``.

    Parameters
    ----------
    tokens_required : bool
        Refuse the rater-id form: only invite links (tokens from ``study create``) work.
    hosts : list of str, optional
        Allowed ``Host`` names (default: the loopback names); ``["*"]`` allows any.

    Raises
    ------
    StudyDependencyError
        Starlette is not installed (``pip install removalx[study]``).
    StudyError
        There is no study ``name`` in ``db``.
    """
    require("starlette", "removalx study serve")
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    sdb = StudyDB(db)
    pages = _StudyPages(sdb, name, tokens_required)
    allowed = hosts or ["127.0.0.1", "localhost"]
    app = Starlette(
        routes=pages.routes(), middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed)]
    )
    app.state.study_db = sdb
    return app
