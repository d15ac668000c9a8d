"""The FastAPI application of the operations page (`create_app`).

Pages (server-rendered, Jinja2): `/` the overview, `/tables/{name}` a table (any of its
names), `/loads/{id}` a load, `/transform` the last dbt build, `/login`. The same data as
JSON: `/api/overview`, `/api/tables/{name}`, `/api/loads/{id}`, `/api/transform`;
FastAPI's description at `/openapi.json` (no Swagger UI: it would load scripts from the
internet). `/healthz` for container checks.

Actions: `POST /loads/{id}/retry` and `POST /tables/{name}/run` from the page's forms
(session or Authorization header, and the CSRF token), `POST /api/...` the same for API
clients (Authorization header only). Refused with 401 without credentials, 403 when the
server runs without `--allow-actions` or the CSRF token is missing or wrong.
"""

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from data_platform import __version__
from data_platform.alerts import register_alerts
from data_platform.alerts.scrub import log_scrub, secrets
from data_platform.errors import ConfigError, DataPlatformError, one_line
from data_platform.settings import Settings, get_settings
from data_platform.web import actions, lineage, queries, runs, sessions
from data_platform.web.auth import (
    ANONYMOUS,
    CSRF_COOKIE,
    CSRF_FIELD,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Credentials,
    Identity,
)
from data_platform.web.dbt_results import last_build, transform_page
from data_platform.web.metrics import PlatformCollector
from data_platform.web.model import (
    ActionResult,
    ApiError,
    LineageGraph,
    LineageNodeView,
    LoadPage,
    Overview,
    RunPage,
    RunsPage,
    SkipRequest,
    TablePage,
    TransformPage,
)
from data_platform.web.render import STATIC, Renderer, mask
from data_platform.web.shared import SingleFlight

log = logging.getLogger(__name__)

FLASH_COOKIE = "dp_flash"
# At most this long (seconds) a worker warms up before it takes readers anyway.
WARM_UP_SECONDS = 10.0
BAD_CSRF = "the form's CSRF token is missing or wrong: reload the page and try again"
READ_ONLY = "actions are off: the server runs read-only (start it with --allow-actions)"
# No inline script or style, nothing from elsewhere: the page's own files only.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _hosts(setting: str) -> list[str]:
    """WEB_ALLOWED_HOSTS as a list; an IPv6 address also in brackets, as a Host header may
    carry it."""
    hosts = [h.strip().lower() for h in setting.split(",") if h.strip()]
    return hosts + [f"[{h}]" for h in hosts if ":" in h and not h.startswith("[")]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every response that does not set them (Cache-Control
    left to static files)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers and not (static and name == "Cache-Control"):
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)


class AuthRequired(Exception):
    """No (valid) credentials: 401."""


class Forbidden(Exception):
    """Authenticated, but not allowed: 403 (actions off, CSRF token missing or wrong)."""


class MaskedJSONResponse(JSONResponse):
    """JSON with the known secrets masked in every string, however they got there."""

    known: tuple[str, ...] = ()

    def render(self, content: Any) -> bytes:
        return super().render(_mask_all(content, type(self).known))


def _mask_all(value: Any, known: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return mask(value, known)
    if isinstance(value, dict):
        return {key: _mask_all(item, known) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_all(item, known) for item in value]
    return value


def table_url(name: str) -> str:
    """A table page's path, its name percent-encoded (names may hold anything)."""
    return f"/tables/{quote(name, safe='')}"


ALLOW_ACTIONS_ENV = "DATA_PLATFORM_WEB_ALLOW_ACTIONS"  # "1": a worker's app allows actions


def app_for_worker() -> FastAPI:
    """The app of each worker process of `data-platform web --workers N` (uvicorn's
    factory): logging as the CLI sets it up, actions as the command was told
    (ALLOW_ACTIONS_ENV)."""
    from data_platform import log as platform_log

    settings = get_settings()
    platform_log.configure(settings.log_level, settings.log_format, log_scrub(settings))
    return create_app(settings, allow_actions=os.environ.get(ALLOW_ACTIONS_ENV) == "1")


def create_app(settings: Settings | None = None, *, allow_actions: bool = False) -> FastAPI:
    """The application on the platform's settings. `allow_actions`: retry and run are
    possible (buttons shown, POSTs accepted); they then need credentials.

    Raises ConfigError for actions without credentials, or half a user/password pair."""
    settings = settings or get_settings()
    # A run from the page alerts as the CLI's does (loads.hooks; the CLI registered too).
    register_alerts()
    credentials = Credentials(settings)
    if allow_actions and not credentials.required:
        raise ConfigError(
            "--allow-actions needs credentials: set WEB_TOKEN, or WEB_USER and WEB_PASSWORD"
        )
    zone = ZoneInfo(settings.data_platform_timezone)
    known = secrets(settings)
    renderer = Renderer(zone, known)
    json_response = type("PlatformJSONResponse", (MaskedJSONResponse,), {"known": known})

    def warm_up() -> None:
        """What the first readers after a start would otherwise wait for, all at once:
        the templates compiled, and one overview computed (the queries' imports, Alembic's
        heads read, the first pooled connection). Measured: 200 readers just after a
        start, p95 1.2-1.3 s without it (doc/benchmarks.md)."""
        try:
            renderer.compile_all()
            overview()
        # A database down at start must not keep the page down: it says so per request.
        except Exception as exc:
            message = queries.Scrubber(settings)(one_line(exc)[0])
            log.warning("the page started without its overview: %s", message)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            await asyncio.wait_for(run_in_threadpool(warm_up), WARM_UP_SECONDS)
        except TimeoutError:  # a database that does not answer: readers get its error
            log.warning("the page started before its overview (%ss)", WARM_UP_SECONDS)
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="data-platform operations",
        version=__version__,
        description="Loads, errors, freshness and the last dbt build of every source; "
        "retry and run behind credentials.",
        docs_url=None,
        redoc_url=None,
        # Served below, behind the pages' credentials.
        openapi_url=None,
        default_response_class=json_response,
    )
    app.state.settings = settings
    app.state.credentials = credentials
    app.state.allow_actions = allow_actions
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    # --- what the pages read: one computation for the readers asking at once ------------

    flights = SingleFlight()

    def overview() -> Overview:
        return flights.run("overview", lambda: queries.overview(settings))

    def table_page(name: str, limit: int) -> TablePage:
        limit = max(1, min(limit, 1000))
        return flights.run(
            ("table", name, limit), lambda: queries.table_page(name, settings, limit=limit)
        )

    # --- who is asking --------------------------------------------------------------------

    def identify(request: Request, *, cookies: bool = True) -> Identity | None:
        if not credentials.required:
            return ANONYMOUS
        found = credentials.check_header(request.headers.get("authorization"))
        if found is None and cookies:
            found = credentials.check_session(request.cookies.get(SESSION_COOKIE))
            if found is not None and found.sid and sessions.is_revoked(found.sid):
                return None  # logged out: the cookie is dead even if it was kept
        return found

    def reader(request: Request) -> Identity:
        who = identify(request)
        if who is None:
            raise AuthRequired
        return who

    def api_caller(request: Request) -> Identity:
        """API actions: the Authorization header only (no cookie: no CSRF to fear)."""
        who = identify(request, cookies=False)
        if who is None or who is ANONYMOUS:
            raise AuthRequired
        return who

    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    def actions_allowed() -> None:
        if not allow_actions:
            raise Forbidden(READ_ONLY)

    Reader = Annotated[Identity, Depends(reader)]

    # --- rendering ------------------------------------------------------------------------

    def nonce_of(request: Request) -> tuple[str, bool]:
        nonce = request.cookies.get(CSRF_COOKIE)
        return (nonce, False) if nonce else (credentials.new_nonce(), True)

    def page(
        request: Request,
        template: str,
        who: Identity | None,
        status_code: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        nonce, new = nonce_of(request)
        flash = _read_flash(credentials, request.cookies.get(FLASH_COOKIE))
        html = renderer.render(
            template,
            request=request,
            who=who,
            login_required=credentials.required,
            login_token=bool(credentials.token),
            login_user=bool(credentials.user),
            allow_actions=allow_actions and who is not None and who is not ANONYMOUS,
            actions_on=allow_actions,
            csrf_field=CSRF_FIELD,
            csrf_token=credentials.csrf_token(nonce, who or ANONYMOUS),
            flash=flash,
            table_url=table_url,
            timezone=zone.key,
            version=__version__,
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        secure = request.url.scheme == "https"
        if new:
            response.set_cookie(
                CSRF_COOKIE, nonce, httponly=True, samesite="strict", secure=secure, path="/"
            )
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path="/")
        return response

    def check_form(request: Request, who: Identity, token: str | None) -> None:
        actions_allowed()
        if not credentials.check_csrf(request.cookies.get(CSRF_COOKIE), token, who):
            log.warning(
                "%s: refused a form without a valid CSRF token (%s %s)",
                who.actor,
                request.method,
                request.url.path,
                extra={"actor": who.actor, "client": client(request)},
            )
            raise Forbidden(BAD_CSRF)

    def after_action(request: Request, where: str, ok: bool, lines: list[str]) -> RedirectResponse:
        response = RedirectResponse(where, status_code=303)
        response.set_cookie(
            FLASH_COOKIE,
            _write_flash(credentials, ok, lines),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    # --- errors ---------------------------------------------------------------------------

    def wants_json(request: Request) -> bool:
        return request.url.path.startswith("/api/") or request.url.path == "/healthz"

    @app.exception_handler(AuthRequired)
    async def _auth_required(request: Request, exc: AuthRequired) -> Response:
        headers = {"WWW-Authenticate": 'Bearer realm="data-platform"'}
        if wants_json(request) or request.method != "GET":
            return json_response(
                ApiError(error="credentials required: a bearer token or basic auth").model_dump(),
                status_code=401,
                headers=headers,
            )
        response = page(
            request,
            "login.html",
            None,
            status_code=401,
            next=_local(request.url.path + (f"?{request.url.query}" if request.url.query else "")),
            failed=False,
        )
        response.headers.update(headers)
        return response

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        if wants_json(request):
            return json_response(ApiError(error=str(exc)).model_dump(), status_code=403)
        return page(
            request, "error.html", identify(request), 403, title="Refused", message=str(exc)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if wants_json(request):
            body = ApiError(error=str(exc.detail)).model_dump()
            return json_response(body, status_code=exc.status_code, headers=exc.headers)
        title = "Not found" if exc.status_code == 404 else "Refused"
        return page(request, "error.html", identify(request), exc.status_code, title=title,
                    message=str(exc.detail))  # fmt: skip

    @app.exception_handler(RequestValidationError)
    async def _bad_request(request: Request, exc: RequestValidationError) -> Response:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        if wants_json(request):
            return json_response(ApiError(error=problems).model_dump(), status_code=422)
        return page(request, "error.html", identify(request), 422, title="Bad request",
                    message=problems)  # fmt: skip

    @app.exception_handler(DataPlatformError)
    async def _platform_error(request: Request, exc: DataPlatformError) -> Response:
        return _error_response(request, exc)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed: %s", request.method, request.url.path, exc, exc_info=exc)
        return _error_response(request, exc)

    def _error_response(request: Request, exc: Exception) -> Response:
        message, code = one_line(exc)
        message = queries.Scrubber(settings)(message) or ""
        if isinstance(exc, queries.NotFound):
            status = 404
        elif code == 3:
            status = 503  # the database is unreachable
        elif isinstance(exc, DataPlatformError):
            status = 409
        else:
            status = 500
        if wants_json(request):
            return json_response(ApiError(error=message, exit_code=code).model_dump(), status)
        title = {404: "Not found", 503: "Database unreachable", 409: "Refused"}.get(status, "Error")
        return page(request, "error.html", identify(request), status, title=title, message=message)

    # --- security headers -------------------------------------------------------------------

    # Innermost first: a Host not configured is refused before anything else runs; the
    # security headers (a plain ASGI middleware: Starlette's BaseHTTPMiddleware costs a
    # task and a stream per request); outermost, a trusted proxy's X-Forwarded-Proto and
    # -For make the request https and the client its own (cookies Secure, logs true).
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=_hosts(settings.web_allowed_hosts))
    app.add_middleware(SecurityHeaders)
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.web_trusted_proxies)

    # --- pages ------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def overview_html(
        request: Request,
        who: Reader,
        q: str = "",
        source: str = "",
        state: str = "",
        refresh: int = 0,
    ) -> HTMLResponse:
        """The overview; `q` (part of a table's name), `source` and `state` filter the
        tables shown, `refresh` reloads the page every that many seconds (0: never)."""
        data = overview()
        needle = q.strip().lower()
        shown = [
            t
            for t in data.tables
            if (not needle or needle in t.name.lower() or needle in (t.source_name or "").lower()
                or needle in (t.db_name or "").lower())
            and source in ("", t.source)
            and state in ("", t.state)
        ]  # fmt: skip
        return page(
            request,
            "overview.html",
            who,
            data=data,
            chart=data.activity,
            shown=shown,
            filters={"q": q.strip(), "source": source, "state": state},
            refresh=refresh if refresh >= 5 else 0,  # never a page that reloads itself flat out
        )

    @app.get("/tables/{name:path}", response_class=HTMLResponse, include_in_schema=False)
    def table_html(request: Request, name: str, who: Reader, limit: int = 50) -> HTMLResponse:
        data = table_page(name, limit)
        return page(request, "table.html", who, data=data, chart=data.activity)

    @app.get("/loads/{load_id}", response_class=HTMLResponse, include_in_schema=False)
    def load_html(request: Request, load_id: int, who: Reader) -> HTMLResponse:
        return page(request, "load.html", who, data=queries.load_page(load_id, settings))

    def transform_with_lineage() -> TransformPage:
        """The last build, each test that did not pass with the tables that feed it."""
        data = transform_page(settings)
        fed = {n.id: n.fed_by for n in lineage_graph().nodes if n.kind == "test"}
        for node in data.tests:
            node.fed_by = fed.get(node.unique_id, [])
        return data

    @app.get("/transform", response_class=HTMLResponse, include_in_schema=False)
    def transform_html(request: Request, who: Reader) -> HTMLResponse:
        return page(request, "transform.html", who, data=transform_with_lineage())

    def lineage_graph() -> lineage.Lineage:
        manifest, statuses = last_build(settings)
        return lineage.build(overview(), manifest, statuses, table_url)

    @app.get("/lineage", response_class=HTMLResponse, include_in_schema=False)
    def lineage_html(request: Request, who: Reader) -> HTMLResponse:
        graph = lineage_graph()
        places, width, height = lineage.layout(graph)
        return page(
            request,
            "lineage.html",
            who,
            graph=graph,
            places=places,
            width=width,
            height=height,
            box=(lineage.BOX_W, lineage.BOX_H),
        )

    @app.get("/runs", response_class=HTMLResponse, include_in_schema=False)
    def runs_html(request: Request, who: Reader, before: int | None = None) -> HTMLResponse:
        return page(request, "runs.html", who, data=runs.runs_page(before))

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_html(request: Request, run_id: int, who: Reader) -> HTMLResponse:
        return page(request, "run.html", who, data=runs.run_page(run_id))

    # --- login ------------------------------------------------------------------------------

    @app.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> Response:
        if not credentials.required:
            return RedirectResponse(_local(next), status_code=303)
        return page(request, "login.html", identify(request), next=_local(next), failed=False)

    @app.post("/login", include_in_schema=False)
    def login(
        request: Request,
        csrf_token: Annotated[str | None, Form()] = None,
        token: Annotated[str, Form()] = "",
        user: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        next: Annotated[str, Form()] = "/",
    ) -> Response:
        if not credentials.check_csrf(request.cookies.get(CSRF_COOKIE), csrf_token, ANONYMOUS):
            raise Forbidden(BAD_CSRF)
        address = client(request)
        wait = sessions.refused_for(address)
        if wait is not None:
            log.warning(
                "login refused to %s: too many failures", address, extra={"client": address}
            )
            refused = page(
                request, "login.html", None, 429, next=_local(next), failed=True, wait=wait
            )
            refused.headers["Retry-After"] = str(wait)
            return refused
        who = (credentials.check_token(token) if token else None) or (
            credentials.check_password(user, password) if user else None
        )
        if who is None:
            sessions.record_failure(address)
            log.warning("failed login from %s", address, extra={"client": address})
            return page(request, "login.html", None, 401, next=_local(next), failed=True)
        log.info("%s logged in", f"web:{who.name}", extra={"client": client(request)})
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            credentials.session_cookie(who),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )
        # A new nonce: the pre-login token must not serve after it.
        response.delete_cookie(CSRF_COOKIE, path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(
        request: Request, who: Reader, csrf_token: Annotated[str | None, Form()] = None
    ) -> Response:
        if not credentials.check_csrf(request.cookies.get(CSRF_COOKIE), csrf_token, who):
            raise Forbidden(BAD_CSRF)
        if who.sid is not None:
            # Ended for good: a copy of the cookie kept elsewhere is refused from now on.
            sessions.revoke(who.sid, datetime.now(UTC) + timedelta(seconds=SESSION_SECONDS))
            log.info("%s logged out", who.actor, extra={"client": client(request)})
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # --- actions from the page ----------------------------------------------------------------

    @app.post("/loads/{load_id}/retry", include_in_schema=False)
    def retry_form(
        request: Request,
        load_id: int,
        who: Reader,
        csrf_token: Annotated[str | None, Form()] = None,
    ) -> Response:
        check_form(request, who, csrf_token)
        try:
            done = actions.retry(load_id, who, client(request))
        except queries.NotFound:
            raise
        except DataPlatformError as exc:
            return after_action(request, f"/loads/{load_id}", False, [f"Error: {exc}"])
        return after_action(request, f"/loads/{load_id}", done.ok, done.lines)

    @app.post("/loads/{load_id}/skip", include_in_schema=False)
    def skip_form(
        request: Request,
        load_id: int,
        who: Reader,
        csrf_token: Annotated[str | None, Form()] = None,
        reason: Annotated[str, Form()] = "",
    ) -> Response:
        check_form(request, who, csrf_token)
        try:
            done = actions.skip(load_id, reason, who, client(request))
        except queries.NotFound:
            raise
        except DataPlatformError as exc:
            return after_action(request, f"/loads/{load_id}", False, [f"Error: {exc}"])
        return after_action(request, f"/loads/{load_id}", done.ok, done.lines)

    @app.post("/tables/{name:path}/run", include_in_schema=False)
    def run_form(
        request: Request,
        name: str,
        who: Reader,
        csrf_token: Annotated[str | None, Form()] = None,
    ) -> Response:
        check_form(request, who, csrf_token)
        try:
            done = actions.run_table(name, who, client(request))
        except queries.NotFound:
            raise
        except Exception as exc:
            message, _ = one_line(exc)
            return after_action(request, table_url(name), False, [f"Error: {message}"])
        return after_action(request, table_url(done.subject), done.ok, done.lines)

    # --- the API ------------------------------------------------------------------------------

    errors: dict[int | str, dict[str, Any]] = {  # FastAPI's `responses`
        401: {"model": ApiError, "description": "No or wrong credentials."},
        403: {"model": ApiError, "description": "Refused (read-only server)."},
        404: {"model": ApiError, "description": "No such table or load."},
        409: {"model": ApiError, "description": "The action is not possible now."},
    }

    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlatformCollector(overview))

    @app.get("/metrics", include_in_schema=False)
    def metrics(who: Reader) -> Response:
        """The platform's state for Prometheus (`web.metrics`), behind the pages'
        credentials when they are set (a scraper sends `Authorization: Bearer`)."""
        body = flights.run("metrics", lambda: generate_latest(registry))
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/overview", response_model=Overview, responses=errors, tags=["read"])
    def overview_api(who: Reader) -> Response:
        """Every source and table: loads by status, freshness, rows, errors, marks."""
        # Serialized once for the readers asking at once, as the overview is computed.
        body = flights.run(
            "overview.json", lambda: json_response(overview().model_dump(mode="json")).body
        )
        return Response(body, media_type="application/json")

    @app.get("/api/tables/{name:path}", response_model=TablePage, responses=errors, tags=["read"])
    def table_api(name: str, who: Reader, limit: int = 50) -> TablePage:
        """One table (by any of its names): loads, errors, schema, revisions."""
        return table_page(name, limit)

    @app.get("/api/loads/{load_id}", response_model=LoadPage, responses=errors, tags=["read"])
    def load_api(load_id: int, who: Reader) -> LoadPage:
        """One load: its file, error and every status change."""
        return queries.load_page(load_id, settings)

    @app.get("/api/transform", response_model=TransformPage, responses=errors, tags=["read"])
    def transform_api(who: Reader) -> TransformPage:
        """The last dbt build: each model's and data test's result."""
        return transform_with_lineage()

    @app.get("/api/lineage", response_model=LineageGraph, responses=errors, tags=["read"])
    def lineage_api(who: Reader) -> LineageGraph:
        """Sources, their tables, the dbt models that read them and the tests that did not
        pass, with the edges between them."""
        graph = lineage_graph()
        return LineageGraph(
            built=graph.built,
            nodes=[LineageNodeView(**vars(n)) for n in graph.nodes],
            edges=[list(e) for e in graph.edges],
        )

    @app.get("/api/runs", response_model=RunsPage, responses=errors, tags=["read"])
    def run_records_api(who: Reader, before: int | None = None) -> RunsPage:
        """The newest passes of `data-platform run` (older than id `before`), newest first."""
        return runs.runs_page(before)

    @app.get("/api/runs/{run_id}", response_model=RunPage, responses=errors, tags=["read"])
    def run_record_api(run_id: int, who: Reader) -> RunPage:
        """One pass: its counts, what it printed and its log lines."""
        return runs.run_page(run_id)

    @app.post(
        "/api/loads/{load_id}/retry", response_model=ActionResult, responses=errors, tags=["act"]
    )
    def retry_api(request: Request, load_id: int) -> ActionResult:
        """Re-queue an errored load (as `data-platform retry`). Needs --allow-actions and
        an Authorization header."""
        who = api_caller(request)
        actions_allowed()
        return actions.retry(load_id, who, client(request))

    @app.post(
        "/api/loads/{load_id}/skip", response_model=ActionResult, responses=errors, tags=["act"]
    )
    def skip_api(request: Request, load_id: int, body: SkipRequest) -> ActionResult:
        """Skip a ready or errored load for good, with a reason (as `data-platform loads
        skip`). Needs --allow-actions and an Authorization header."""
        who = api_caller(request)
        actions_allowed()
        return actions.skip(load_id, body.reason, who, client(request))

    @app.post(
        "/api/tables/{name:path}/run", response_model=ActionResult, responses=errors, tags=["act"]
    )
    def run_api(request: Request, name: str) -> ActionResult:
        """Scan the table's source and ingest the table. Needs --allow-actions and an
        Authorization header."""
        who = api_caller(request)
        actions_allowed()
        return actions.run_table(name, who, client(request))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> Response:
        """Up or down, and nothing more: it needs no credentials."""
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        from data_platform.db.engine import get_engine

        try:
            with get_engine().connect() as conn:
                conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, DataPlatformError):
            return JSONResponse({"status": "down"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_json(who: Reader) -> JSONResponse:
        """The API's description, behind the same credentials as the API itself."""
        return JSONResponse(app.openapi())

    return app


def _local(target: str) -> str:
    """A redirect target on this site only (a path, never //host or a URL)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _write_flash(credentials: Credentials, ok: bool, lines: list[str]) -> str:
    text = "\n".join(lines)
    if len(text) > 1500:
        text = text[:1500] + "\n..."
    return credentials.seal("flash", [ok, text])


def _read_flash(credentials: Credentials, cookie: str | None) -> dict[str, Any] | None:
    """The last action's outcome (a signed cookie, shown once)."""
    value = credentials.unseal("flash", cookie)
    if not isinstance(value, list) or len(value) != 2:
        return None
    ok, text = value
    return {"ok": bool(ok), "lines": str(text).splitlines()}
