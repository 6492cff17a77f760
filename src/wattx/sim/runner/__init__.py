"""Runs the community model against the wattx service over its HTTP API.

``run.run_in_process`` starts a scratch service with a virtual clock;
``run.run_against`` drives any service a :class:`client.ServiceClient` reaches.
"""
