"""The system a board runs: the host link (``link.HostLink``: ``uart``, ``frames`` and the
sequence numbers, with the protocol in ``protocol``, shared with the host driver) and
``system.ArraySystem``, the command executor, the buffers and the controller around a
weight-stationary MPE array."""
