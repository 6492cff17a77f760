"""Edge nodes: the control plane's rules (pure) and, under ``daemon``, the node daemon.

The modules at this level do no I/O: registration tokens, the link challenge,
the frame format of the link, node health and the command life cycle. The
service (:mod:`wattx.services.community.nodes`) and the daemon (:mod:`wattx.nodes.daemon`)
are built on them.
"""
