"""A Gitea 1.27 API double: realistic sample data, Gitea's paging and errors, fault injection.

Used by the tests and by the product's demo mode. Nothing here knows about MCP.

    app = make_double_app(token="aegis-demo-token", control=False)
    server, port, app = await start_double("127.0.0.1", 0)   # in a running event loop
    app.faults.add("status", status=503, times=2)             # see faults.py
    app.double.requests                                       # what it received
"""

from .app import GiteaDouble, RequestRecord, make_double_app
from .dataset import ALL_READ_SCOPES, BOT_LOGIN, DEMO_TOKEN, Dataset, build_dataset
from .faults import FAULT_KINDS, Fault, Faults
from .runner import start_double, stop_double

__all__ = [
    "make_double_app",
    "start_double",
    "stop_double",
    "GiteaDouble",
    "RequestRecord",
    "Faults",
    "Fault",
    "FAULT_KINDS",
    "Dataset",
    "build_dataset",
    "DEMO_TOKEN",
    "BOT_LOGIN",
    "ALL_READ_SCOPES",
]
