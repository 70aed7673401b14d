"""pytest setup for pbm's Python tests: every test here is skipped, with the reason, where torch, a
CUDA GPU or the compiled extension is missing (see _env.py). Shared fixtures."""

import pytest

from _env import SKIP_REASON


def pytest_report_header(config):
    return f"pbm python tests: {'skipped: ' + SKIP_REASON if SKIP_REASON else 'running'}"


@pytest.fixture
def stride():
    return 16


@pytest.fixture
def telemetry_attached():
    """Starts pbm telemetry (CUPTI) and skips when it cannot attach (built without CUPTI, another
    CUPTI client holds the subscriber, ...). Restores the process mode afterwards."""
    import pbm

    status = pbm.telemetry.start()
    if not status["attached"] and status["started"]:
        pbm.telemetry.attach()
    status = pbm.telemetry.status()
    if not status["attached"]:
        pytest.skip(f"pbm telemetry is not attached: {status['reason']}")
    mode = pbm.telemetry.mode()
    yield pbm.telemetry
    pbm.telemetry.set_mode(mode)
