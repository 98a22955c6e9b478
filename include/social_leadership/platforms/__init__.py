"""Platform connectors: one module per platform, shared behaviour in :mod:`.base`, and every
platform's facts declared once, by its connector class, in :mod:`.registry`.

Importing this package registers the built-in connectors in the order of the roster's
platform columns, then imports any other module of the package: a new platform's module
registers its own connector (CONTRIBUTING.md, "Add a platform").
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from social_leadership.platforms.base import Connector, PlatformError
from social_leadership.platforms.registry import connector_class, platform_names

# In this order they become the roster's columns (and the platform_metrics DAG's tasks).
BUILT_IN_MODULES = ("x", "bluesky", "mastodon", "youtube", "graph", "linkedin", "threads")
# Modules of this package that hold no connector.
_SHARED_MODULES = frozenset({"__main__", "base", "redaction", "registry"})

for _name in BUILT_IN_MODULES:
    importlib.import_module(f"{__name__}.{_name}")
for _module in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _module.name not in _SHARED_MODULES and _module.name not in BUILT_IN_MODULES:
        importlib.import_module(f"{__name__}.{_module.name}")


def build_connector(
    platform: str,
    base_url: str,
    credentials: str | None = None,
    login: str | None = None,
    **options: Any,
) -> Connector:
    """The connector for ``platform`` from its Airflow connection's fields.

    ``credentials`` (the connection password) and ``login`` go to the constructor options
    the connector declares for them (:attr:`Connector.connection_fields`: X's bearer
    token, Instagram's own business user id, ...); ``options`` go to the connector as
    they are (``max_wait_seconds``, ``sleep``, ``client``, fields from the connection
    extra such as Mastodon's ``allowed_instances``, state such as ``account_ids``). A
    field the connector declares required and the connection leaves empty raises
    :class:`PlatformError` naming it.
    """
    connector = connector_class(platform)
    given = {"password": credentials, "login": login}
    for declared in connector.connection_fields:
        if declared.source in given:
            options.setdefault(declared.option, given[declared.source])
        if declared.required and not options.get(declared.option):
            raise PlatformError(
                f"{platform}: {declared.meaning} is required (connection {declared.source})"
            )
    return connector(base_url, **options)


__all__ = ["build_connector", "connector_class", "platform_names"]
