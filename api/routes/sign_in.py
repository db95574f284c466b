"""`/login`: a sign-in page a person can read, and the viewer link a TV opens once.

`GET /login?key=…` (the link `ccpulse up` prints) and the form's `POST /login` open a session
(a cookie) and go on to the wallboard, or to `next` (a path on this server, e.g. `/planning/`).
A refusal is the form again with what went wrong in words (a browser), or problem+json (any
other client): a wrong key used to show raw JSON, a short one a raw 422.
"""

from __future__ import annotations

import html
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from redis.exceptions import RedisError

from services import problems

from ..auth import COOKIE, Authenticator

router = APIRouter(tags=["access"])
MIN_KEY = 8
MAX_FORM_BYTES = 4096
NOT_A_KEY = "That is not a ccpulse key: keys are long and start with ccp_. Check the link."
UNKNOWN = "This key is unknown or was revoked. Ask your administrator for a new link."
UNAVAILABLE = "Sign-in is unavailable right now (the key store does not answer). Try again soon."


@router.get("/login", include_in_schema=False)
async def login_page(
    request: Request,
    key: Annotated[str | None, Query(max_length=256)] = None,
    next: Annotated[str | None, Query(max_length=256)] = None,
    tv: Annotated[str | None, Query(max_length=8)] = None,
) -> Response:
    """The form; with `key`, signs in at once (the viewer link a TV opens)."""
    target = _target(next, bool(tv))
    if key is None:
        return _form(target)
    return await _sign_in(request, key, target)


@router.post("/login", include_in_schema=False)
async def login_form(request: Request) -> Response:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return _refused(request, 413, "The form is too large.", "/")
    form = parse_qs(body.decode("utf-8", "replace"))
    target = _target(form.get("next", [None])[0], bool(form.get("tv")))
    return await _sign_in(request, form.get("key", [""])[0].strip(), target)


async def _sign_in(request: Request, key: str, target: str) -> Response:
    if len(key) < MIN_KEY:
        return _refused(request, 422, NOT_A_KEY, target)
    auth: Authenticator = request.app.state.api.auth
    try:
        principal = await auth.from_key(key)
        session = None if principal is None else await auth.open_session(principal)
    except (RedisError, OSError):
        return _refused(request, 503, UNAVAILABLE, target)
    if session is None:
        return _refused(request, 401, UNKNOWN, target)
    response = RedirectResponse(target, status_code=303)
    settings = request.app.state.api.settings
    response.set_cookie(
        COOKIE,
        session,
        max_age=settings.session_max_seconds,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies(),
    )
    return response


def _target(next_path: str | None, tv: bool) -> str:
    """Only a path on this server (never `//host` or a URL: no open redirect)."""
    path = next_path if next_path and next_path.startswith("/") else "/"
    if path.startswith("//") or "\\" in path:
        path = "/"
    if tv and path == "/":
        return "/?tv=1"
    return path


def _refused(request: Request, status: int, message: str, target: str) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return _form(target, message, status)
    field = "key" if status in (401, 422) else "login"
    return problems.problem(status, f"{field}: {message}", [{"field": field}])


def _form(target: str, error: str | None = None, status: int = 200) -> HTMLResponse:
    alert = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    page = PAGE.format(alert=alert, next=html.escape(target, quote=True))
    return HTMLResponse(page, status_code=status, headers={"Cache-Control": "no-store"})


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · ccpulse</title>
<style>
  body {{ font: 18px/1.5 system-ui, sans-serif; background: #10141a; color: #f2f4f7;
         display: grid; place-items: center; min-height: 100vh; margin: 0; }}
  main {{ width: min(28rem, 90vw); }}
  h1 {{ font-size: 1.6rem; margin: 0 0 1rem; }}
  label {{ display: block; margin: 1rem 0 .3rem; }}
  input[type=password] {{ width: 100%; box-sizing: border-box; padding: .6rem; font: inherit;
         border: 1px solid #8a94a6; border-radius: 6px; background: #1b212b; color: #f2f4f7; }}
  button {{ margin-top: 1.2rem; padding: .6rem 1.4rem; font: inherit; border: 0;
           border-radius: 6px; background: #3b82f6; color: #fff; cursor: pointer; }}
  button:focus-visible, input:focus-visible {{ outline: 3px solid #fbbf24; outline-offset: 2px; }}
  .error {{ background: #3d1114; border: 1px solid #f87171; color: #fecaca; padding: .6rem .8rem;
            border-radius: 6px; }}
  .hint {{ color: #c3c9d4; font-size: .9rem; }}
</style></head>
<body><main>
<h1>Sign in to ccpulse</h1>
{alert}
<form method="post" action="/login">
  <label for="key">Your access key</label>
  <input id="key" name="key" type="password" autocomplete="current-password" required
         minlength="8" autofocus>
  <input type="hidden" name="next" value="{next}">
  <button type="submit">Sign in</button>
</form>
<p class="hint">A screen stays signed in; the key never appears in its address.
Keys come from your administrator (<code>ccpulse keys create</code>).</p>
</main></body></html>
"""
