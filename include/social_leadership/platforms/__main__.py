"""``python -m social_leadership.platforms --write-seed`` / ``--check``: the dbt seed
platforms.csv against the platform registry (:func:`.registry.main`). Run as the package,
not as ``.registry``: the package imports that module, so ``python -m`` of it ran a second
copy, and Python warned so on every run."""

from __future__ import annotations

from social_leadership.platforms.registry import main

if __name__ == "__main__":
    raise SystemExit(main())
