"""The docs set each publish leaves (docs_site.py): swapped in whole, served on loopback.
The real dbt docs and GX Data Docs of a real publish are in tests/e2e/test_monitoring_e2e.py.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from slw_testing import LOADED_ADDRESS

from social_leadership import docs_site
from social_leadership.settings import load_settings


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("SLW_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    settings.ensure_dirs()
    return settings


def _fake_dbt_docs(contents: list[str], seen: list[str | None], settings):
    """Stands in for dbt: records what a reader of ``current`` sees meanwhile."""

    def generate(_settings, site_dir):
        current = docs_site.current_docs(settings) / "dbt" / "index.html"
        seen.append(current.read_text() if current.exists() else None)
        site_dir.mkdir(parents=True)
        (site_dir / "index.html").write_text(contents.pop(0))
        return site_dir / "index.html"

    return generate


def test_a_publish_swaps_in_a_whole_set_and_keeps_the_one_it_replaced(settings, monkeypatch):
    seen: list[str | None] = []
    monkeypatch.setattr(
        docs_site,
        "_generate_dbt_docs",
        _fake_dbt_docs(["first", "second", "third"], seen, settings),
    )
    start = datetime(2026, 1, 5, tzinfo=UTC)
    for number, run_id in enumerate(("run-1", "run-2", "run-3")):
        gx = docs_site.pending_gx_dir(settings, run_id)
        gx.mkdir(parents=True)
        (gx / "index.html").write_text(f"gx of {run_id}")
        published = docs_site.publish_docs(settings, run_id, now=start + timedelta(hours=number))

    # While a set was being built, readers saw the previous set whole.
    assert seen == [None, "first", "second"]
    current = docs_site.current_docs(settings)
    assert (current / "dbt" / "index.html").read_text() == "third"
    assert (current / "gx" / "index.html").read_text() == "gx of run-3"
    assert published.path == current.resolve()
    assert published.gx_index == published.path / "gx" / "index.html"
    # The replaced set stays for readers still on it; the one before goes, and no pending
    # Data Docs are left behind.
    sets = sorted(p.name for p in (settings.docs_dir / "sets").iterdir())
    assert len(sets) == 2
    assert sets[-1] == published.path.name
    assert not any((settings.docs_dir / "pending").iterdir())


def test_a_failed_generation_leaves_the_current_set(settings, monkeypatch):
    monkeypatch.setattr(docs_site, "_generate_dbt_docs", _fake_dbt_docs(["good"], [], settings))
    docs_site.publish_docs(settings, "run-1")

    def failing(_settings, _site_dir):
        raise RuntimeError("dbt docs generate failed")

    monkeypatch.setattr(docs_site, "_generate_dbt_docs", failing)
    with pytest.raises(RuntimeError):
        docs_site.publish_docs(settings, "run-2")
    current = docs_site.current_docs(settings)
    assert (current / "dbt" / "index.html").read_text() == "good"
    assert [p.name for p in (settings.docs_dir / "sets").iterdir()] == [current.resolve().name]


def test_the_docs_are_served_on_loopback_from_the_current_set(settings, monkeypatch):
    contents = ["first", "second"]
    monkeypatch.setattr(docs_site, "_generate_dbt_docs", _fake_dbt_docs(contents, [], settings))
    docs_site.publish_docs(settings, "run-1")
    server = docs_site.docs_server(settings, port=0)
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/dbt/index.html"
        assert httpx.get(url, timeout=10).text == "first"
        docs_site.publish_docs(settings, "run-2")
        # The next request follows the new set, no restart.
        assert httpx.get(url, timeout=10).text == "second"
    finally:
        server.shutdown()
        server.server_close()


def test_slw_docs_says_when_there_is_nothing_to_serve(settings, capsys):
    from social_leadership.cli import main

    assert main(["docs"]) == 2
    assert "no docs in" in capsys.readouterr().err


def test_every_address_gx_s_templates_load_from_a_cdn_has_a_kept_copy():
    import great_expectations

    templates = Path(great_expectations.__file__).parent / "render" / "view" / "templates"
    loaded = {
        address
        for template in templates.rglob("*.j2")
        for address in LOADED_ADDRESS.findall(template.read_text(encoding="utf-8"))
    }
    assert loaded, "no template loads anything from a CDN: has GX moved its templates?"
    kept = docs_site.vendor_sources()["urls"]
    assert sorted(loaded - set(kept)) == []
    assert set(kept) <= loaded  # none kept for an address GX no longer names


def test_every_kept_file_is_the_one_its_package_shipped():
    sources = docs_site.vendor_sources()
    recorded = {entry["file"]: entry for entry in sources["files"]}
    on_disk = {
        path.relative_to(docs_site.VENDOR_DIR).as_posix()
        for path in docs_site.VENDOR_DIR.rglob("*")
        if path.is_file()
    } - {"README.md", "sources.json"}
    assert on_disk == set(recorded)
    assert set(sources["urls"].values()) <= set(recorded)
    for name, entry in recorded.items():
        digest = hashlib.sha256((docs_site.VENDOR_DIR / name).read_bytes()).hexdigest()
        assert digest == entry["sha256"], name
        assert entry["license"], name
        assert "@" in entry["package"], name
    # Each package's licence travels with its files.
    for top in {name.split("/")[0] for name in recorded}:
        assert any(n.startswith(f"{top}/") and "LICENSE" in n for n in recorded), top


@pytest.mark.parametrize("folder", ["docs $HOME here", "docs ${x}", "a$b"])
def test_gx_data_docs_are_written_where_asked_whatever_dollar_signs_the_path_holds(
    tmp_path, monkeypatch, folder
):
    # GX substitutes variables in its config's values: a folder named "docs $HOME here" got
    # its Data Docs in "docs /root here", and "$x" (no such variable) failed the gate.
    from social_leadership.quality import _ephemeral_context

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    site = tmp_path / folder / "gx"

    index = docs_site.build_gx_data_docs(_ephemeral_context(), site)

    assert index == site / "index.html"
    assert index.is_file()
    assert not (tmp_path / "home").exists()
