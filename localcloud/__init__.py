"""The local cloud: emulated AWS services and the runner that makes the real workflow run offline."""
