"""The site's endpoints, through Starlette's test client, over a log a demo filled."""

from __future__ import annotations

import json
import zipfile
from io import BytesIO

import pytest
from starlette.testclient import TestClient

from kneeroll_device.config import load_config
from kneeroll_device.web.app import create_app


def site(data_dir, **web) -> TestClient:
    config = load_config(None).replace(storage={"data_dir": str(data_dir)},
                                       web={"live_socket": str(data_dir / "live-test.sock"), **web})
    return TestClient(create_app(config), base_url="http://localhost")


@pytest.fixture(scope="module")
def client(demo_log):
    with site(demo_log) as c:
        yield c


def test_today_shows_the_programme_and_the_last_session_marked_as_a_demo(client):
    page = client.get("/")
    assert page.status_code == 200
    assert "of 2 sessions done today" in page.text
    assert "Streak: 0 days of 7" in page.text
    assert 'class="tag">demo</span>' in page.text


def test_the_sessions_page_lists_the_demo_newest_first(client):
    page = client.get("/sessions")
    assert page.status_code == 200
    assert "8/8 steps" in page.text and "completed" in page.text
    assert "page 1 of 1 (1 session)" in page.text


def test_a_session_page_has_the_step_table_and_an_svg_chart(client):
    page = client.get("/sessions/1")
    assert page.status_code == 200
    assert page.text.count("<tr class=") == 8
    assert "<svg" in page.text and 'class="band roll"' in page.text and 'class="rep"' in page.text
    assert "Hamstrings" in page.text


def test_progress_has_the_calendar_and_a_trend_per_step(client):
    page = client.get("/progress?days=7")
    assert page.status_code == 200
    assert page.text.count('class="day n') == 7


def test_the_exports_are_the_log(client):
    document = json.loads(client.get("/export/sessions.json").content)
    assert [s["outcome"] for s in document["sessions"]] == ["completed"]
    archive = zipfile.ZipFile(BytesIO(client.get("/export/sessions.csv").content))
    assert {"sessions.csv", "steps.csv", "events.csv", "pressure.csv"} <= set(archive.namelist())


@pytest.mark.parametrize("path, status", [
    ("/sessions/999", 404), ("/sessions/abc", 404), ("/sessions?page=0", 400), ("/sessions?page=x", 400),
    ("/sessions?page=5", 404), ("/progress?days=1000", 400), ("/export/sessions.exe", 404), ("/nothing", 404),
])
def test_bad_input_is_a_page_not_a_traceback(client, path, status):
    page = client.get(path)
    assert page.status_code == status
    assert "Traceback" not in page.text and "<h1>" in page.text


def test_nothing_can_be_changed(client):
    for method in ("post", "put", "delete"):
        assert getattr(client, method)("/sessions/1").status_code == 405


def test_every_response_carries_the_security_headers(client):
    page = client.get("/")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("host, ok", [("localhost", True), ("192.168.1.20:8080", True), ("[fe80::1]:8080", True),
                                      ("evil.example", False), ("kneeroll.evil.example", False)])
def test_only_the_pis_own_names_are_served(client, host, ok):
    assert (client.get("/", headers={"host": host}).status_code == 200) is ok


def test_a_configured_host_name_is_served(demo_log):
    with site(demo_log, hosts=["roller.home.arpa"]) as c:
        assert c.get("/", headers={"host": "roller.home.arpa"}).status_code == 200


def test_with_a_token_the_first_visit_needs_it_and_then_a_cookie_does(demo_log):
    with site(demo_log, token="s3cret") as c:
        assert c.get("/sessions").status_code == 401
        assert c.get("/sessions?token=wrong").status_code == 401
        first = c.get("/sessions?token=s3cret", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/sessions"
        assert c.get("/sessions").status_code == 200  # the cookie now


def test_without_a_log_the_today_page_says_how_to_begin(tmp_path):
    with site(tmp_path) as c:
        assert "No sessions yet" in c.get("/").text
        assert c.get("/sessions").status_code == 404


def test_a_second_site_does_not_take_the_live_socket_of_the_first(tmp_path):
    import asyncio

    from kneeroll_device.web.feed import LiveFeed

    async def both():
        first, second = LiveFeed(tmp_path / "live.sock"), LiveFeed(tmp_path / "live.sock")
        first.open()
        try:
            with pytest.raises(OSError):
                second.open()
            assert (tmp_path / "live.sock").is_socket()
        finally:
            first.close()
        second.open()  # a socket left behind by nobody is taken over
        second.close()

    asyncio.run(both())
