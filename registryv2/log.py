"""The library's logger, ``registryv2``: requests at DEBUG, retries at INFO, problems at WARNING.

A library does not decide where logs go: the logger has a ``NullHandler`` and the application
configures the rest (``logging.basicConfig(level=logging.INFO)`` shows every retry). Nothing
logged ever holds a credential: requests are logged by method and URL without its query.
"""

import logging

logger = logging.getLogger("registryv2")
logger.addHandler(logging.NullHandler())
