"""The node daemon (``wattx node …``): the edge side of the link.

It holds the link to the service, relays meters' signed reading batches (on
disk while the link is down), persists and runs the commands it receives, and
bridges the devices of its site over MQTT (``docs/device-protocol.md``).
"""
