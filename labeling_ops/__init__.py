"""Operating the deployed workflow: the `labeling-loop` command (cli), the notebook helper
(notebook, optional extra), and the workflow diagram generator (diagram).

Named `labeling_ops`, not `ops`: `ops` is the import name of another PyPI package (Canonical's
charm framework), which an installed `ops` of ours would shadow or be shadowed by."""
