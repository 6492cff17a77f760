"""Virtual devices: a battery and its meter speaking the MQTT device protocol
(``docs/device-protocol.md``), for tests, demos and sites without hardware."""
