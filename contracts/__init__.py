"""The serving contracts (``*.schema.json``), shipped as the package ``pipeline.contracts``.

pyproject.toml maps ``pipeline.contracts`` onto this folder, so a wheel carries the schemas
while this folder stays their only copy; ``pipeline.serving.contracts`` reads them with
``importlib.resources``. Nothing to import here.
"""
