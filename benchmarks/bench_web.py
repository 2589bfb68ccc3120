"""The phone site's speed and weight over a log of about 1,000 sessions, and the live feed's cost.

    .venv/bin/python benchmarks/bench_web.py [--days 500] [--runs 20]

- server time per page: the median over ``--runs`` requests through Starlette's test
  client (in process: the app's own time, no network), target under 50 ms;
- the first page's weight with nothing cached (the HTML, the stylesheet and, for the
  live page, its script), target under 150 KB;
- the web process's resident memory after every page was served once (``kneeroll web``
  as the service runs it), target under 60 MB;
- the daemon's cost of the live feed: the CPU time of building and sending a snapshot,
  times how often the daemon sends one (5 a second), against the daemon's CPU time a
  second of demo, target under 2 %.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_store import generate

from kneeroll_device.config import load_config
from kneeroll_device.live import PUBLISH_EVERY_S, LivePublisher, snapshot
from kneeroll_device.routine.engine import Engine
from kneeroll_device.routine.spec import load_routine

PAGES = ["/", "/live", "/sessions", "/sessions?page=25", "/sessions/{last}", "/progress?days=28", "/progress?days=90",
         "/export"]


def page_times(data_dir: Path, runs: int) -> dict[str, float]:
    from starlette.testclient import TestClient

    from kneeroll_device.web.app import create_app

    config = load_config(None).replace(storage={"data_dir": str(data_dir)},
                                       web={"live_socket": str(data_dir / "bench.sock")})
    out = {}
    with TestClient(create_app(config), base_url="http://localhost") as client:
        last = client.get("/export/sessions.json")  # warm, and find the newest session
        newest = max(s["session_id"] for s in last.json()["sessions"])
        for path in PAGES:
            url = path.format(last=newest)
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - start)
                assert response.status_code == 200, (url, response.status_code)
            out[url] = statistics.median(times)
    return out


def first_page_bytes(data_dir: Path) -> dict[str, int]:
    from starlette.testclient import TestClient

    from kneeroll_device.web.app import create_app

    config = load_config(None).replace(storage={"data_dir": str(data_dir)},
                                       web={"live_socket": str(data_dir / "bench.sock")})
    out = {}
    with TestClient(create_app(config), base_url="http://localhost") as client:
        for path in ("/", "/live"):
            html = client.get(path).text
            assets = re.findall(r'(?:href|src)="http://localhost(/static/[^"]+)"', html)
            out[path] = len(html.encode()) + sum(len(client.get(a).content) for a in assets)
    return out


def web_rss_mb(data_dir: Path) -> float:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "kneeroll_device.cli", "web", "--port", str(port), "--bind",
                               "127.0.0.1", "--data-dir", str(data_dir)], stdout=subprocess.PIPE, text=True)
    try:
        server.stdout.readline()
        import urllib.request

        wait_for_port(port)
        for path in PAGES[:3] + ["/progress", "/export/sessions.json"]:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}").read()
        status = Path(f"/proc/{server.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    finally:
        server.terminate()
        server.wait(10)


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port}")


def live_cost(runs: int = 2000) -> tuple[float, float]:
    """CPU seconds per snapshot built and sent (to a listener), and per second of daemon time."""
    engine = Engine(load_routine("runners-knee"))
    engine.start(0.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "live.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        listener.bind(str(path))
        publisher = LivePublisher(path)
        start = time.process_time()
        for k in range(runs):
            publisher.publish(snapshot(engine, session_id=1, kpa=20.0, absent={"imu": False, "force": False},
                                       warning=None, sequence=k), float(k))
            listener.recv(8192)
        per = (time.process_time() - start) / runs
        publisher.close()
        listener.close()
    return per, per / PUBLISH_EVERY_S


def daemon_cpu_per_second() -> float:
    """The demo's CPU time over its simulated seconds at speed 1 would be this; measured at 20x."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        done = subprocess.run([sys.executable, "-c", (
            "import resource, json, sys; from kneeroll_device.cli import main; "
            f"code = main(['demo', '--json', '--speed', '20', '--data-dir', {tmp!r}]); "
            "r = resource.getrusage(resource.RUSAGE_SELF); print(r.ru_utime + r.ru_stime, file=sys.stderr)")],
            capture_output=True, text=True)
        wall = time.time() - start
    cpu = float(done.stderr.strip().splitlines()[-1])
    return cpu / (wall * 20.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=500, help="days of twice-daily sessions (500: about 1,000)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        sessions = generate(data_dir, args.days)
        print(f"log: {sessions} sessions")
        for url, t in page_times(data_dir, args.runs).items():
            print(f"  {url:28s} median {1000 * t:6.1f} ms  (target < 50 ms) {'ok' if t < 0.05 else 'MISS'}")
        for path, size in first_page_bytes(data_dir).items():
            print(f"  first load of {path:14s} {size / 1024:6.1f} KB  (target < 150 KB)")
        rss = web_rss_mb(data_dir)
        print(f"  web process resident      {rss:6.1f} MB  (target < 60 MB) {'ok' if rss < 60 else 'MISS'}")
    per, per_second = live_cost()
    daemon = daemon_cpu_per_second()
    print(f"  live snapshot             {1e6 * per:6.1f} us each, {1000 * per_second:.2f} ms CPU a second; "
          f"the daemon uses {1000 * daemon:.0f} ms a second of session: {100 * per_second / daemon:.2f} % "
          f"(target < 2 %)")


if __name__ == "__main__":
    main()
