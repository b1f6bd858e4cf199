"""Host driver: talks to a board (real, over a serial port, or simulated, over a socket)
and runs GEMMs on it with the golden model's exact bits."""
