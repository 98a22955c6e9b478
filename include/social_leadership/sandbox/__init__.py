"""A local stand-in for the platform APIs, serving synthetic counts for demos and tests.

It speaks the real wire formats (paths, parameters, auth, batch limits, rate-limit
headers), so code that passes against it works against the live services. Every count it
serves is synthetic: the demo's curve (:mod:`social_leadership.demo.synthetic`).
"""

from __future__ import annotations

from social_leadership.demo.synthetic import synthetic_metrics
from social_leadership.sandbox.server import Fault, SandboxServer

__all__ = ["Fault", "SandboxServer", "synthetic_metrics"]
