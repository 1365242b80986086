"""The local cloud: the real template, state machine and handlers, end to end on one machine.

By role:
- `engine/`: the cloud itself: `template.yaml` deployed into moto, the Lambda runtime, the botocore
  hooks that answer emulated services, the compensations for moto's interpreter, faults on demand;
- `services/`: what moto does not cover: emulated Rekognition Custom Labels and Ground Truth, and
  the real Label Studio server with emulated reviewers;
- `data/`: the ground truth (one model, one manifest parser), synthetic images, bad images;
- `runner` (one whole run, read back) and `cli` (`python -m localcloud run|demo`).

The layer's package (`labeling_loop`) is importable because the project is installed into the venv
(`pip install -e .`, see pyproject.toml), as Lambda mounts it at /opt/python.
"""
