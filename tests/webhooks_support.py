"""What the webhook tests share: receivers on loopback (which only an operator's switch
allows), a short retry ladder, and a Starter account (the cheapest plan with webhooks)."""

import pytest

from tests.receiver import Receiver

LOCAL = {"ALLOW_PRIVATE_URLS": True, "WEBHOOK_RETRY_DELAYS": [1, 1, 1, 1, 1]}


@pytest.fixture
def config_overrides() -> dict:
    return LOCAL


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def starter(make_account):
    """A Starter-plan account: the cheapest plan with webhooks."""
    return make_account(plan="starter")
