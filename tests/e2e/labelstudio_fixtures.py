"""Fixtures of the Label Studio tests: ONE real server per test session (it takes 35-90 s to
start), shared by the backend and browser tests, reading images from ONE moto S3 server.

The moto server (`ThreadedMotoServer`) runs in this process: it shares moto's backends with the
in-process `mock_aws` clients, so objects a test writes through a mocked boto3 client are what Label
Studio presigns and the browser loads (while that test's `mock_aws` is active).

Test modules bind these fixtures by assignment. Each module then registers its own session fixture,
so the server and the moto endpoint are kept in the pytest config's stash and started only once;
they stop at the end of the session (config cleanup).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from moto.server import ThreadedMotoServer

from localcloud.services.labelstudio.server import (
    LabelStudioServer,
    is_installed,
    start_labelstudio,
    stop_labelstudio,
)

logger = logging.getLogger(__name__)

_MOTO_KEY = pytest.StashKey[str]()
_SERVER_KEY = pytest.StashKey[LabelStudioServer]()


def _once(config: pytest.Config, key: pytest.StashKey, start: Callable[[], object]) -> object:
    if key not in config.stash:
        config.stash[key] = start()
    return config.stash[key]


@pytest.fixture(scope="session")
def moto_s3_endpoint(pytestconfig: pytest.Config) -> str:
    """An S3 endpoint on loopback for processes outside this one (Label Studio, Chromium)."""

    def start() -> str:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        pytestconfig.add_cleanup(server.stop)
        host, port = server.get_host_and_port()
        return f"http://{host}:{port}"

    return str(_once(pytestconfig, _MOTO_KEY, start))


@pytest.fixture(scope="session")
def labelstudio(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory, moto_s3_endpoint: str
) -> LabelStudioServer:
    if not is_installed():
        # `make labelstudio-venv` installs it; a missing server is a broken setup, not a skip.
        pytest.fail(
            ".venv-labelstudio is missing: run `make labelstudio-venv` "
            "(localcloud/install_labelstudio.sh) before the labelstudio tests",
            pytrace=False,
        )

    def start() -> LabelStudioServer:
        server, process = start_labelstudio(
            tmp_path_factory.mktemp("labelstudio"), s3_endpoint=moto_s3_endpoint
        )
        pytestconfig.add_cleanup(lambda: stop_labelstudio(process))
        logger.info("Label Studio at %s (log %s)", server.url, server.log_path)
        return server

    server = _once(pytestconfig, _SERVER_KEY, start)
    assert isinstance(server, LabelStudioServer)
    return server
