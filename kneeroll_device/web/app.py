"""The site's routes: each page is a template over the session log, opened read-only per request."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from contextlib import asynccontextmanager, closing
from datetime import datetime, timezone
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..errors import KneerollError
from ..insight import duration_text, history_document, programme_of, report_document, show_document, write_export
from ..live import live_socket_path
from ..store import DB_NAME, SESSION_COLUMNS, event_rows, open_log, present, pressure_rows, reading_data_dir
from .charts import pressure_svg
from .feed import LiveFeed
from .security import Guard, allowed_hosts

HERE = Path(__file__).parent
PER_PAGE = 20
PROGRESS_DAYS = (7, 28, 90)
LIVE_WAIT_S = 0.5  # an open live page gets a snapshot at least this often, even when nothing changed


def create_app(config, *, feed: LiveFeed | None = None) -> Guard:
    """The site over the config's log; ``feed`` is the live socket's reader (one is made from the config)."""
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["duration"] = duration_text
    data_dir = reading_data_dir(config)
    routine, per_day, programme_days = programme_of(config)
    feed = feed or LiveFeed(live_socket_path(config))

    def log() -> sqlite3.Connection:
        if not (data_dir / DB_NAME).exists():
            raise HTTPException(404, "There is no session log yet: run a session (or kneeroll demo) first.")
        try:
            return open_log(data_dir)
        except KneerollError as exc:
            raise HTTPException(503, str(exc)) from None

    def render(request: Request, name: str, **context) -> Response:
        return templates.TemplateResponse(request, name, {"page": name.removesuffix(".html"), **context})

    def today(request: Request) -> Response:
        now = datetime.now(timezone.utc)
        try:
            db = log()
        except HTTPException:
            return render(request, "today.html", progress=None, last=None)
        with closing(db):
            progress = history_document(db, days=1, routine=routine, per_day=per_day,
                                        programme_days=programme_days, now=now)["progress"]
            last = _session_page(db, 1, 1)[0]
        return render(request, "today.html", progress=progress, last=last[0] if last else None)

    def live(request: Request) -> Response:
        return render(request, "live.html")

    async def live_events(request: Request) -> StreamingResponse:
        async def stream():
            while not await request.is_disconnected():
                yield f"data: {json.dumps(feed.current(), separators=(',', ':'))}\n\n"
                await feed.wait_next(LIVE_WAIT_S)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"cache-control": "no-store", "x-accel-buffering": "no"})

    def live_now(request: Request) -> Response:
        return Response(json.dumps(feed.current()), media_type="application/json", headers={"cache-control": "no-store"})

    def sessions(request: Request) -> Response:
        page = _int_param(request, "page", 1, low=1)
        with closing(log()) as db:
            rows, total = _session_page(db, page, PER_PAGE)
        pages = max(1, -(-total // PER_PAGE))
        if page > pages:
            raise HTTPException(404, f"There is no page {page}: the log has {pages}.")
        return render(request, "sessions.html", rows=rows, page_no=page, pages=pages, total=total)

    def session(request: Request) -> Response:
        session_id = request.path_params["session_id"]
        with closing(log()) as db:
            try:
                doc = show_document(db, session_id)
            except KneerollError:
                raise HTTPException(404, f"There is no session {session_id}.") from None
            events = event_rows(db, session_id, ("stroke", "rep"))
            chart = pressure_svg(doc["steps"], events, pressure_rows(db, session_id), doc["session"]["duration_s"])
        return render(request, "session.html", doc=doc, s=doc["session"], chart=chart)

    def progress(request: Request) -> Response:
        days = _int_param(request, "days", 28, low=1, high=365)
        with closing(log()) as db:
            report = report_document(db, days=days, routine=routine, per_day=per_day, programme_days=programme_days)
        return render(request, "progress.html", report=report, days=days, choices=PROGRESS_DAYS)

    def export(request: Request) -> Response:
        return render(request, "export.html")

    def download(request: Request) -> Response:
        fmt = request.path_params["fmt"]
        with closing(log()) as db, tempfile.TemporaryDirectory() as tmp:
            name = "kneeroll-sessions." + ("zip" if fmt == "csv" else "json")
            out = Path(tmp) / name
            write_export(db, out, fmt, None, pressure=True)
            body = out.read_bytes()
        media = "application/zip" if fmt == "csv" else "application/json"
        return Response(body, media_type=media, headers={"content-disposition": f'attachment; filename="{name}"'})

    async def error(request: Request, exc: HTTPException) -> Response:
        text = exc.detail if exc.status_code != 405 else "This site only shows things: nothing can be changed here."
        return templates.TemplateResponse(request, "error.html", {"page": "error", "status": exc.status_code,
                                                                  "text": text}, status_code=exc.status_code)

    async def failure(request: Request, exc: Exception) -> Response:
        return templates.TemplateResponse(request, "error.html", {"page": "error", "status": 500,
                                                                  "text": "Something went wrong reading the log."},
                                          status_code=500)

    @asynccontextmanager
    async def lifespan(app):
        try:
            feed.open()
        except OSError:
            pass  # the live page then says no session is running; the history still works
        yield
        feed.close()

    routes = [
        Route("/", today, name="today"),
        Route("/live", live, name="live"),
        Route("/live/events", live_events, name="live_events"),
        Route("/live/now", live_now, name="live_now"),
        Route("/sessions", sessions, name="sessions"),
        Route("/sessions/{session_id:int}", session, name="session"),
        Route("/progress", progress, name="progress"),
        Route("/export", export, name="export"),
        Route("/export/sessions.{fmt:str}", _only(download, fmt=("csv", "json")), name="download"),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={HTTPException: error, Exception: failure})
    app.state.feed = feed
    return Guard(app, hosts=allowed_hosts(config.web.hosts), token=config.web.token)


def _only(endpoint, **allowed):
    """The endpoint, answering 404 unless each path parameter is one of its allowed values."""
    def checked(request: Request) -> Response:
        for key, values in allowed.items():
            if request.path_params[key] not in values:
                raise HTTPException(404, "There is no such download: the log comes as sessions.csv or sessions.json.")
        return endpoint(request)
    return checked


def _int_param(request: Request, name: str, default: int, *, low: int, high: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise HTTPException(400, f"{name}={text!r} is not a whole number.") from None
    if value < low or (high is not None and value > high):
        limits = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise HTTPException(400, f"{name}={value} is out of range: use a number {limits}.")
    return value


def _session_page(db: sqlite3.Connection, page: int, per_page: int) -> tuple[list[dict], int]:
    """One page of sessions, newest first, as readers show them; and how many there are."""
    total = db.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    columns = ", ".join((*SESSION_COLUMNS, "writer", "heartbeat_at", "meta"))
    rows = db.execute(f"SELECT {columns} FROM sessions ORDER BY started_at DESC, id DESC LIMIT ? OFFSET ?",
                      (per_page, (page - 1) * per_page))
    return [present(db, dict(r)) for r in rows], total

