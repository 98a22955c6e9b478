"""Everything synthetic, kept apart from production: the demo.

* :mod:`.roster`: the generator of the bundled demo roster (real and invented executives);
* :mod:`.synthetic`: the deterministic count curve the sandbox API serves;
* :mod:`.follower_history`: two years of synthetic follower history on that curve;
* :mod:`.microdata`: the generator of the synthetic survey microdata;
* :mod:`.inputs`: what the demo adds to a warehouse when ``SLW_DEMO`` is on;
* :mod:`.run`: the ``slw run`` (``make run``) driver: the DAGs against the sandbox.

Production code (DAGs, tasks, intake, dbt, quality, serving, platforms) never imports this
package; a test parses their imports. It reaches the demo only through
:mod:`social_leadership.demo_hook`, which loads :data:`.inputs.INPUTS` (registered as an
entry point in pyproject.toml) when the ``SLW_DEMO`` switch is on. Importing this package
imports nothing else, so the sandbox can use the count curve cheaply.
"""
