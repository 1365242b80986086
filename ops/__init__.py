"""Operating the deployed workflow from a script or a notebook: start a run, wait for it, read it."""
