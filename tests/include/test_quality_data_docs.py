"""GX Data Docs of a quality gate (quality.check_marts with data_docs_dir): each suite and
this run's results, named by its run id, the failures of a failed gate included."""

from __future__ import annotations

import re

import duckdb
from slw_testing import LOADED_ADDRESS

from social_leadership.docs_site import pending_gx_dir
from social_leadership.quality import check_marts
from social_leadership.settings import Settings


def test_a_failed_gate_leaves_data_docs_showing_what_failed(copied_built_warehouse: Settings):
    with duckdb.connect(str(copied_built_warehouse.warehouse_path)) as con:
        con.execute(
            "update marts.fct_executive_reach_daily set followers = -5 "
            "where executive_id = 'us_one'"
        )
    site = pending_gx_dir(copied_built_warehouse, "run-bad")

    report = check_marts(copied_built_warehouse, "run-bad", data_docs_dir=site)

    assert report.critical_failures
    assert "marts.fct_executive_reach_daily" in (site / "index.html").read_text()
    [page] = (site / "validations" / "marts" / "fct_executive_reach_daily" / "run-bad").glob(
        "*/*.html"
    )
    text = " ".join(re.sub(r"<[^>]+>", " ", page.read_text()).split())
    assert "Status: Failed" in text
    assert "Unsuccessful Expectations 1" in text
    assert "run-bad" in text
    # Each suite has its page too.
    assert (site / "expectations" / "marts" / "dim_executive.html").is_file()
    # Nothing fetched from GX's bucket (its logo, on every page): the site's own copy.
    pages = [*site.rglob("*.html"), *site.rglob("*.css")]
    assert not [p for p in pages if "amazonaws" in p.read_text()]
    logo = 'src="../../../../../static/images/logo-long.png"'
    assert logo in page.read_text()
    assert (site / "static" / "images" / "logo-long.png").is_file()
    # Nor anything from a CDN: every script, style sheet and font is the site's own copy.
    for html in site.rglob("*.html"):
        text = html.read_text()
        assert not LOADED_ADDRESS.findall(text), html
        for local in re.findall(r'(?:src|href)="([^"]*static/vendor/[^"]+)"', text):
            assert (html.parent / local).is_file(), (html, local)
    vendor = site / "static" / "vendor"
    assert 'src="../../../../../static/vendor/jquery-3.7.1/jquery.min.js"' in page.read_text()
    for css in vendor.rglob("*.css"):
        for local in re.findall(r"url\([\"']?(?!data:)([^)\"']+)", css.read_text()):
            assert (css.parent / local).is_file(), (css, local)
    # Opened as a file (no server), a page's scripts load only without GX's CDN checks
    # (integrity, crossorigin: an opaque origin's requests of them are refused).
    for html in site.rglob("*.html"):
        for tag in re.findall(r"<(?:script|link)\b[^>]*static/vendor/[^>]*>", html.read_text()):
            assert "integrity" not in tag, (html, tag)
            assert "crossorigin" not in tag, (html, tag)
    # Every picture, the favicon too, is found where each page looks for it.
    for html in site.rglob("*.html"):
        for local in re.findall(r'(?:src|href)="([^"]*static/images/[^"?]+)', html.read_text()):
            assert (html.parent / local).is_file(), (html, local)
