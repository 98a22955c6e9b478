"""The weekly report: a briefing on the published marts, as HTML, PDF and CSV, mailed.

:mod:`.data` reads the week's figures from the serving copy, :mod:`.charts` draws them,
:mod:`.render` lays out the HTML and PDF, :mod:`.weekly` writes and mails them.
"""
