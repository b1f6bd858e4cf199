"""The system a board runs: the UART host link (``uart``, ``frames``, with the frame format
in ``protocol``, shared with the host driver) and ``system.ArraySystem``, the buffers and
the controller around a weight-stationary MPE array."""
