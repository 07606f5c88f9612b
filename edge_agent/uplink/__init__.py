"""The device's MQTT 5 uplink (docs/design.md §2.1 "Uplink", §3 topics).

See :mod:`edge_agent.uplink.client` for the session choice (Clean Start, no session expiry: the
outbox is the source of truth), QoS 1 delivery with a bounded in-flight window and the status
with its last will.
"""

from edge_agent.uplink.client import Uplink, UplinkStats
from edge_agent.uplink.config import BrokerAddress, TlsFiles, Topics, UplinkConfigError
from edge_agent.uplink.status import DeviceHealth, StatusProvider, StatusSigner

__all__ = [
    "BrokerAddress",
    "DeviceHealth",
    "StatusProvider",
    "StatusSigner",
    "TlsFiles",
    "Topics",
    "Uplink",
    "UplinkConfigError",
    "UplinkStats",
]
