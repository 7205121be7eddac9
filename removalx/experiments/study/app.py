"""``removalx study serve``: the rating web app (Starlette, served by uvicorn).

Security (docs/study.md):

* every study route is under ``/r/<token>/``: the rater's random token is checked on every
  request (unknown or malformed: 404); raters get a token from ``study create --raters`` (an
  invite link) or, when tokens are not required (the server listens on a loopback address
  only), by entering a rater id on the start page;
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
from typing import Any
from urllib.parse import parse_qs, urlsplit

from removalx.experiments.study import StudyError, require
from removalx.experiments.study.create import RATER_CHARS
from removalx.experiments.study.db import StudyDB
from removalx.experiments.study.order import rater_order
from removalx.experiments.study.pages import done_page, item_page, landing_page, message_page

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
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse, Response
    from starlette.routing import Route

    sdb = StudyDB(db)
    study = sdb.study(name)
    items = sdb.items(name)
    if not items:
        raise StudyError(f"Study {name[:60]!r} has no items.", "Create it again with videos to rate.")
    by_id = {it["id"]: it for it in items}
    css, js = _static("study.css"), _static("study.js")

    def html_(text: str, status: int = 200) -> Response:
        return HTMLResponse(text, status_code=status, headers=HEADERS)

    def error(status: int, title: str, text: str) -> Response:
        return html_(message_page(title, text), status)

    def not_found() -> Response:
        return error(404, "Not found", "This link is not valid. Use the invite link you were given.")

    def rater_of(request: Request) -> dict[str, Any] | None:
        token = request.path_params.get("token", "")
        if not TOKEN_RE.match(token):
            return None
        return sdb.rater_by_token(name, token)

    def order_of(rater: str) -> list[dict[str, Any]]:
        return [items[i] for i in rater_order(int(study["seed"]), rater, len(items))]

    def answers_of(rater: str) -> dict[str, int]:
        return {a["item_id"]: int(a["score"]) for a in sdb.answers(name, rater)}

    def same_origin(request: Request) -> bool:
        # Browsers say where a request comes from in Sec-Fetch-Site; with "no-referrer" pages
        # Chromium sends "Origin: null" on same-origin form posts, so Origin is the fallback only.
        site = request.headers.get("sec-fetch-site")
        if site is not None:
            return site in ("same-origin", "none")
        origin = request.headers.get("origin")
        if origin is None:
            return True
        return origin != "null" and urlsplit(origin).netloc == request.headers.get("host", "")

    async def form(request: Request) -> dict[str, str] | None:
        body = await request.body()
        if len(body) > MAX_BODY:
            return None
        try:
            parsed = parse_qs(
                body.decode("ascii"), keep_blank_values=True, max_num_fields=4, strict_parsing=False
            )
        except (UnicodeDecodeError, ValueError):
            return None
        return {k: v[0] for k, v in parsed.items() if len(v) == 1}

    async def landing(request: Request) -> Response:
        return html_(landing_page(tokens_required))

    async def start(request: Request) -> Response:
        if tokens_required:
            return error(
                403, "Invite link required", "This study is rated through personal invite links only."
            )
        if not same_origin(request):
            return error(403, "Refused", "Requests from other sites are refused.")
        data = await form(request)
        rater = (data or {}).get("rater", "").strip()
        if not 1 <= len(rater) <= 64 or not set(rater) <= RATER_CHARS:
            return error(400, "Invalid rater id", "Use 1 to 64 letters, digits or _ . @ - as rater id.")
        token = sdb.add_rater(name, rater)
        return RedirectResponse(f"/r/{token}/", status_code=303, headers=HEADERS)

    async def resume(request: Request) -> Response:
        r = rater_of(request)
        if r is None:
            return not_found()
        answered = answers_of(r["rater"])
        base = f"/r/{r['token']}"
        for it in order_of(r["rater"]):
            if it["id"] not in answered:
                return RedirectResponse(f"{base}/i/{it['id']}", status_code=303, headers=HEADERS)
        return RedirectResponse(f"{base}/done", status_code=303, headers=HEADERS)

    async def item(request: Request) -> Response:
        r = rater_of(request)
        iid = request.path_params.get("item", "")
        if r is None or not ITEM_RE.match(iid) or iid not in by_id:
            return not_found()
        order = order_of(r["rater"])
        ids = [it["id"] for it in order]
        pos = ids.index(iid)
        answered = answers_of(r["rater"])
        return html_(
            item_page(
                f"/r/{r['token']}",
                by_id[iid],
                pos + 1,
                len(ids),
                len(answered),
                answered.get(iid),
                ids[pos - 1] if pos > 0 else None,
                ids[pos + 1] if pos + 1 < len(ids) else None,
                r["finished"] is not None,
            )
        )

    def media_route(kind: str, mime: str) -> Any:
        async def handler(request: Request) -> Response:
            r = rater_of(request)
            iid = request.path_params.get("item", "")
            if r is None or not ITEM_RE.match(iid) or iid not in by_id:
                return not_found()
            data = sdb.media(name, iid, kind)
            if data is None:  # pragma: no cover - an item of the study has media
                return not_found()
            return Response(data, media_type=mime, headers=HEADERS)

        return handler

    async def answer(request: Request) -> Response:
        r = rater_of(request)
        if r is None:
            return not_found()
        if not same_origin(request):
            return error(403, "Refused", "Requests from other sites are refused.")
        data = await form(request)
        if data is None:
            return error(400, "Invalid answer", "Send one item and one score.")
        iid, raw = data.get("item", ""), data.get("score", "")
        if not ITEM_RE.match(iid) or iid not in by_id:
            return error(400, "Invalid answer", "This item is not part of the study.")
        if raw not in ("-2", "-1", "0", "1", "2", "+1", "+2"):
            return error(400, "Invalid answer", "A score is a whole number from -2 to +2.")
        if r["finished"] is not None:
            return error(409, "Finished", "You have finished the study: answers can no longer change.")
        try:
            sdb.put_answer(name, r["rater"], iid, int(raw))
        except StudyError:
            return error(409, "Finished", "You have finished the study: answers can no longer change.")
        answered = answers_of(r["rater"])
        order = [it["id"] for it in order_of(r["rater"])]
        pos = order.index(iid)
        base = f"/r/{r['token']}"
        for nxt in order[pos + 1 :] + order[:pos]:  # the next unanswered item after this one
            if nxt not in answered:
                return RedirectResponse(f"{base}/i/{nxt}", status_code=303, headers=HEADERS)
        return RedirectResponse(f"{base}/done", status_code=303, headers=HEADERS)

    async def done(request: Request) -> Response:
        r = rater_of(request)
        if r is None:
            return not_found()
        answered = answers_of(r["rater"])
        rows = [(i + 1, it["id"], answered.get(it["id"])) for i, it in enumerate(order_of(r["rater"]))]
        return html_(
            done_page(f"/r/{r['token']}", rows, r["finished"] is not None, len(answered), len(items))
        )

    async def finish(request: Request) -> Response:
        r = rater_of(request)
        if r is None:
            return not_found()
        if not same_origin(request):
            return error(403, "Refused", "Requests from other sites are refused.")
        if len(answers_of(r["rater"])) < len(items):
            return error(409, "Not yet", "Answer every item before finishing.")
        sdb.finish(name, r["rater"])
        return RedirectResponse(f"/r/{r['token']}/done", status_code=303, headers=HEADERS)

    async def static_css(request: Request) -> Response:
        return Response(css, media_type="text/css", headers=HEADERS)

    async def static_js(request: Request) -> Response:
        return Response(js, media_type="text/javascript", headers=HEADERS)

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204, headers=HEADERS)

    routes = [
        Route("/", landing, methods=["GET"]),
        Route("/favicon.ico", no_icon, methods=["GET"]),
        Route("/start", start, methods=["POST"]),
        Route("/static/study.css", static_css, methods=["GET"]),
        Route("/static/study.js", static_js, methods=["GET"]),
        Route("/r/{token}/", resume, methods=["GET"]),
        Route("/r/{token}/i/{item}", item, methods=["GET"]),
        Route("/r/{token}/media/{item}", media_route("media", "image/gif"), methods=["GET"]),
        Route("/r/{token}/legend/{item}", media_route("legend", "image/png"), methods=["GET"]),
        Route("/r/{token}/answer", answer, methods=["POST"]),
        Route("/r/{token}/done", done, methods=["GET"]),
        Route("/r/{token}/finish", finish, methods=["POST"]),
    ]
    allowed = hosts or ["127.0.0.1", "localhost"]
    app = Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=allowed)])
    app.state.study_db = sdb
    return app
