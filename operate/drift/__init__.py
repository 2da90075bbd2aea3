"""Drift detection, both layers, one report (``scripts/drift STACK``; see ``cli`` for the whole story).

One job a module: ``report`` (the findings and outcomes, and the rule that makes them a status and an
exit code), ``render`` (text and Markdown), ``cloud`` and ``hosts`` (the two checks), ``parse``
(pyinfra's dry-run JSON and testinfra's JUnit XML), ``reasons`` (why a host was not checked, in one
line), ``cli`` (the command).
"""
