"""The docs each successful publish leaves in ``SLW_DOCS_DIR`` (default ``<data>/docs``):
dbt docs with their catalog (every model's columns with types and descriptions) and Great
Expectations Data Docs of the quality gate that let the publication through.

Layout::

    docs/current -> sets/<stamp>-<run>/    the set of the last publish (a symlink)
    docs/sets/<stamp>-<run>/dbt/index.html dbt docs, one self-contained file (--static)
    docs/sets/<stamp>-<run>/gx/index.html  GX Data Docs of that run's validations
    docs/pending/<run>/gx/                 written by the quality gate, moved in at publish

A set is written whole in its own folder and becomes current by one atomic rename of the
``current`` symlink, so a reader never sees half of one; the set it replaced is kept for
the readers still on it, older ones are removed. ``make docs`` serves ``docs/`` on
loopback.

dbt's page loads nothing from the network (its scripts are inline; its usage tracking is
off because the manifest says ``send_anonymous_usage_stats: false``). Nor do GX's: the
Bootstrap, jQuery, Font Awesome, bootstrap-table and Vega its pages would load from public
CDNs are copies kept in the package (``docs_vendor/``, each file's source, licence and hash
in its ``sources.json``), put in the site's ``static/vendor/``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from social_leadership.landing import safe_run_id
from social_leadership.settings import Settings

CURRENT_LINK = "current"
SETS_DIR = "sets"
PENDING_DIR = "pending"
GX_SITE = "gx"
DBT_SITE = "dbt"
# The set replaced last stays for readers still on it; older ones go.
SETS_KEPT = 2


@dataclasses.dataclass(frozen=True)
class DocsSet:
    """A published set of docs: where it is and what it holds."""

    path: Path  # the set's own folder
    dbt_index: Path
    gx_index: Path | None  # None when the quality gate left no Data Docs for the run


def current_docs(settings: Settings) -> Path:
    """The path that always names the current set (the ``current`` symlink)."""
    return settings.docs_dir / CURRENT_LINK


def pending_gx_dir(settings: Settings, run_id: str) -> Path:
    """Where the quality gate of ``run_id`` writes its Data Docs, until publish moves them."""
    return settings.docs_dir / PENDING_DIR / safe_run_id(run_id) / GX_SITE


def build_gx_data_docs(context: Any, site_dir: Path) -> Path:
    """Render every suite and validation result held by the GX ``context`` as a local
    Data Docs site in ``site_dir`` (replaced); returns its index page."""
    shutil.rmtree(site_dir, ignore_errors=True)
    site_dir.mkdir(parents=True)
    site_name = "slw_local_site"
    context.add_data_docs_site(
        site_name=site_name,
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                # GX substitutes $NAME and ${NAME} in a config's values (a folder named
                # "docs $HOME" was written to "docs /root"; "$x" failed the gate): \$ is a $.
                "base_directory": str(site_dir).replace("$", r"\$"),
            },
        },
    )
    context.build_data_docs(site_names=[site_name])
    _localise_site(site_dir)
    return site_dir / "index.html"


def _localise_site(site_dir: Path) -> None:
    """The site reading nothing from another host, and every page working opened as a
    file: the kept copies of GX's CDN files in ``static/vendor``, and each page and style
    sheet read once and rewritten once (its logo, its CDN files, its pictures)."""
    shutil.copytree(VENDOR_DIR, site_dir / _SITE_VENDOR, dirs_exist_ok=True)
    vendor_files = _VendorFiles.of_sources()
    for page in [*site_dir.rglob("*.html"), *site_dir.rglob("*.css")]:
        text = page.read_text(encoding="utf-8")
        local = _local_logo(text, page, site_dir)
        if page.suffix == ".html":
            local = _site_relative_images(vendor_files.local(local, page, site_dir), page, site_dir)
        if local != text:
            page.write_text(local, encoding="utf-8")


# GX's pages show its logo from GX's S3 bucket (each view a request to a third party, with
# the build's time in the query), though the site ships the same logo in static/images.
_REMOTE_LOGO = re.compile(
    r"https://great-expectations-web-assets\.s3[.\w-]*\.amazonaws\.com/"
    r"(?:full_logo_dark|logo-long)\.png(?:\?[^\"')\s]*)?"
)
_LOCAL_LOGO = Path("static") / "images" / "logo-long.png"


def _local_logo(text: str, page: Path, site_dir: Path) -> str:
    """A page's (or style sheet's) ``text`` reading the logo from the site's own copy, by a
    path relative to the page."""
    if not _REMOTE_LOGO.search(text):
        return text
    return _REMOTE_LOGO.sub(os.path.relpath(site_dir / _LOCAL_LOGO, page.parent), text)


VENDOR_DIR = Path(__file__).with_name("docs_vendor")
_SITE_VENDOR = Path("static") / "vendor"


def vendor_sources() -> dict[str, Any]:
    """``docs_vendor/sources.json``: ``urls`` (each CDN address GX's pages load -> the file
    kept for it) and ``files`` (every file kept: its package, licence and SHA-256)."""
    return json.loads((VENDOR_DIR / "sources.json").read_text(encoding="utf-8"))


@dataclasses.dataclass(frozen=True)
class _VendorFiles:
    """The CDN addresses GX's pages name, each with the kept copy that stands in for it."""

    urls: dict[str, str]
    named: re.Pattern[str]

    @classmethod
    def of_sources(cls) -> _VendorFiles:
        urls: dict[str, str] = vendor_sources()["urls"]
        # The longest first: no address is replaced inside a longer one.
        addresses = sorted(urls, key=len, reverse=True)
        return cls(
            urls,
            re.compile("|".join(f"(?<=[\"']){re.escape(url)}(?=[\"'])" for url in addresses)),
        )

    def local(self, text: str, page: Path, site_dir: Path) -> str:
        """A page's ``text`` reading the kept copies in the site's ``static/vendor`` by a
        relative path, instead of the CDNs."""
        if not self.named.search(text):
            return text
        vendor = os.path.relpath(site_dir / _SITE_VENDOR, page.parent)
        local = self.named.sub(lambda m: f"{vendor}/{self.urls[m.group(0)]}", text)
        return _TAG.sub(lambda m: _without_cdn_checks(m.group(0), f"{vendor}/"), local)


# GX asks for its CDN files with Subresource Integrity and CORS (integrity="sha384-..."
# crossorigin="anonymous"). A page opened as a file (file://, as `slw run` prints it, and a
# failed gate's docs, which nothing serves) has an opaque origin: Chromium refused every
# such script, so the pages' tabs, "Show more info" and dialogs did nothing. The kept
# copies are checked against their SHA-256 (sources.json) by the test suite instead.
_TAG = re.compile(r"<(?:script|link)\b[^>]*>")
_CDN_CHECKS = re.compile(r"\s+(?:integrity|crossorigin)(?:=(?:\"[^\"]*\"|'[^']*'|[^\s>]*))?")


def _without_cdn_checks(tag: str, kept: str) -> str:
    """``tag`` without its integrity and crossorigin attributes when it reads a kept copy."""
    return _CDN_CHECKS.sub("", tag) if kept in tag else tag


# GX's validation pages name the favicon one folder too shallow (its template counts the
# suite name's dots, not the run's two folders): a 404 on every view.
_STATIC_IMAGE = re.compile(r"""(?<=["'])(?:\.{1,2}/)*static/images/([\w.-]+)(?=["'])""")


def _site_relative_images(text: str, page: Path, site_dir: Path) -> str:
    """A page's ``text`` with each reference to a picture of the site's ``static/images``
    that does not resolve from the page made relative to the page."""
    images = site_dir / "static" / "images"

    def resolved(match: re.Match[str]) -> str:
        if (page.parent / match.group(0)).is_file() or not (images / match[1]).is_file():
            return match.group(0)
        return os.path.relpath(images / match[1], page.parent)

    return _STATIC_IMAGE.sub(resolved, text)


def _generate_dbt_docs(settings: Settings, site_dir: Path) -> Path:
    """``dbt docs generate --static`` (catalog included) into ``site_dir/index.html``.

    In a target folder of its own, so the build's run_results.json stays the build's. The
    build's manifest is copied there first: dbt then reuses the compiled project instead
    of compiling every node again (6 s instead of 10 s on the demo warehouse).
    """
    from social_leadership.dbt_runner import run_dbt

    target = settings.data_dir / "dbt" / "docs-target"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    args = ["docs", "generate", "--static"]
    if (settings.dbt_target_dir / "manifest.json").is_file():
        for name in ("manifest.json", "partial_parse.msgpack"):
            if (settings.dbt_target_dir / name).is_file():
                shutil.copy2(settings.dbt_target_dir / name, target / name)
        args.append("--no-compile")
    run_dbt(
        args,
        dataclasses.replace(settings, dbt_target_dir=target),
        log_path=settings.logs_dir / "dbt-docs.log",
    )
    site_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(target / "static_index.html", site_dir / "index.html")
    # The artefacts beside it, for tools that read them (the page itself needs neither).
    for name in ("catalog.json", "manifest.json"):
        shutil.copy2(target / name, site_dir / name)
    return site_dir / "index.html"


def _switch_current(docs_dir: Path, set_name: str) -> None:
    link = docs_dir / CURRENT_LINK
    new_link = docs_dir / f".{CURRENT_LINK}.new"
    new_link.unlink(missing_ok=True)
    # Relative, so the folder can be moved or served from elsewhere as a whole.
    new_link.symlink_to(Path(SETS_DIR) / set_name, target_is_directory=True)
    os.replace(new_link, link)


def _prune(docs_dir: Path, current: str) -> None:
    sets = sorted(
        p.name for p in (docs_dir / SETS_DIR).iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    for name in sets[:-SETS_KEPT]:
        if name != current:
            shutil.rmtree(docs_dir / SETS_DIR / name, ignore_errors=True)
    # Data Docs of gates whose run never published (a failed gate, a failed publish).
    for pending in (docs_dir / PENDING_DIR).glob("*"):
        shutil.rmtree(pending, ignore_errors=True)


def publish_docs(settings: Settings, run_id: str, *, now: datetime | None = None) -> DocsSet:
    """Generate the dbt docs, join them with the run's pending GX Data Docs in a new set,
    and make that set current. Call after the marts were published (in the warehouse pool:
    dbt reads the warehouse for the catalog)."""
    docs_dir = settings.docs_dir
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S%fZ")
    set_name = f"{stamp}-{safe_run_id(run_id)}"
    building = docs_dir / SETS_DIR / f".{set_name}.building"
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    try:
        _generate_dbt_docs(settings, building / DBT_SITE)
        gx_pending = pending_gx_dir(settings, run_id)
        if (gx_pending / "index.html").is_file():
            shutil.move(gx_pending, building / GX_SITE)
        final = docs_dir / SETS_DIR / set_name
        os.replace(building, final)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    _switch_current(docs_dir, set_name)
    _prune(docs_dir, set_name)
    gx_index = final / GX_SITE / "index.html"
    return DocsSet(
        path=final,
        dbt_index=final / DBT_SITE / "index.html",
        gx_index=gx_index if gx_index.is_file() else None,
    )


def publish_docs_task(context: dict[str, Any]) -> dict[str, str | None]:
    """The ``publish_docs`` task: the docs of the run's publication (paths as XCom)."""
    import logging

    from social_leadership.tasks import task_settings

    docs = publish_docs(task_settings(), str(context["run_id"]))
    logging.getLogger(__name__).info(
        "docs published: dbt %s, GX Data Docs %s", docs.dbt_index, docs.gx_index or "none"
    )
    return {
        "dbt_docs": str(docs.dbt_index),
        "gx_data_docs": str(docs.gx_index) if docs.gx_index else None,
    }


def docs_server(settings: Settings, *, port: int | None = None) -> Any:
    """An HTTP server for the current docs set on 127.0.0.1 (loopback only), not started.

    It serves the ``current`` link: each request follows it, so a new publish is served
    from the next request on.
    """
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(current_docs(settings)))
    return ThreadingHTTPServer(("127.0.0.1", settings.docs_port if port is None else port), handler)
