"""The phone site: the session log and a live view, served read-only on the home network.

`kneeroll web` runs it (its own systemd unit, systemd/kneeroll-web.service); `kneeroll
demo --web` runs it beside a demo. Starlette serves the pages from Jinja2 templates, and
uvicorn is the server: both are imported only by the commands that need them, so the
daemon does not pay for them.
"""
