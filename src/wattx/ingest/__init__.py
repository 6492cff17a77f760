"""Adapters that bring meter readings into the service from outside HTTP (MQTT)."""

from wattx.ingest.mqtt import MqttReadingIngest, ack_topic, broker_address

__all__ = ["MqttReadingIngest", "ack_topic", "broker_address"]
