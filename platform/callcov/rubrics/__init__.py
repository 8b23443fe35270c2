"""Accounts' own scoring rubrics (issue 14): stored, versioned, validated documents in the form of
``models/rubrics/<id>/v<N>.yaml``, and the one place that turns a rubric reference into a ``Rubric``."""
