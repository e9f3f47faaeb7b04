"""pytest-rmqd: an rmqd AMQP 0-9-1 broker for test suites.

Installing the package activates the pytest plugin (pytest_rmqd.plugin): fixtures `rmqd`
(session) and `rmqd_vhost` (per test). pytest_rmqd.launcher starts rmqd without pytest.
"""

from .launcher import (HOW_TO_GET, BinaryNotFound, CtlClient, CtlError, Rmqd, RmqdError,
                       StartupError, Vhost, amqp_url, find_binary)

__version__ = '0.1.0'

__all__ = ['BinaryNotFound', 'CtlClient', 'CtlError', 'HOW_TO_GET', 'Rmqd', 'RmqdError',
           'StartupError', 'Vhost', 'amqp_url', 'find_binary']
