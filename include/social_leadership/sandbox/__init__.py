"""A local stand-in for the platform APIs, serving synthetic counts for demos and tests.

It speaks the real wire formats (paths, parameters, auth, batch limits, rate-limit
headers), so code that passes against it works against the live services. Every count it
serves is synthetic: the demo's curve (:mod:`social_leadership.demo.synthetic`).
"""
