"""The local cloud: the real template, state machine and handlers, end to end on one machine.

The layer's package (`labeling_loop`) is importable because the project is installed into the venv
(`pip install -e .`, see pyproject.toml), as Lambda mounts it at /opt/python.
"""
