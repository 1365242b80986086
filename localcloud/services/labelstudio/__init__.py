"""The Label Studio review backend in the local cloud: the real server (`server`), emulated
reviewers who answer its tasks (`reviewers`), and the wiring into a local cloud (`backend`)."""
