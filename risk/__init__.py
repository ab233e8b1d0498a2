"""The machinery behind the course scripts: one module per concern.

The course's scripts at the top level (``ingestion.py`` ... ``fullprocess.py``, ``app.py``) each own one step
and call into this package; README's "Where things are" maps every module.
"""
