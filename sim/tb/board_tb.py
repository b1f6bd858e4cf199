"""The simulated board: ``hw.soc.system.ArraySystem`` whose UART pins are bridged to a TCP
socket, so that the unmodified host driver (``host.driver``) runs against the RTL.

The bridge is byte-level and edge-driven (``sim.line_bridge``): bytes from the host are
driven onto ``rx`` a level change at a time, bytes on ``tx`` are decoded from the start
bit's edge and go to the host as soon as their stop bit is seen. With nothing to send,
the bridge looks at the socket every ``POLL_BITS`` bit times (a byte time), so a host
byte waits at most that long in simulated time; meanwhile the clock (cocotb's ``Clock``,
in the simulator) runs free, so the board keeps counting cycles (its receive timeout
fires) and a host that thinks for a while sees simulated time pass at the simulator's
speed.

Environment: FP8HW_HW_PARAMS (JSON: divisor), FP8HW_BOARD_PORTFILE (the listening port
is written there once the board is ready), FP8HW_BOARD_STATSFILE (optional: JSON of the
simulated clock cycles, wall seconds and the simulator's CPU seconds from the host's
connection to its disconnection, written then). The test ends when the host
disconnects.
"""

import json
import os
import socket
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Timer
from cocotb.utils import get_sim_time

from sim.line_bridge import EdgeReceiver, drive_line

CLOCK_NS = 10
DIVISOR = json.loads(os.environ["FP8HW_HW_PARAMS"])["divisor"]
BIT_NS = DIVISOR * CLOCK_NS
POLL_BITS = 10


@cocotb.test()
async def bridge(dut):
    dut.rx.value = 1
    # The simulator toggles the clock ("gpi"), without waking Python twice a cycle.
    Clock(dut.clk, CLOCK_NS, unit="ns", impl="gpi").start()
    await Timer(4 * CLOCK_NS, unit="ns")      # the board's power-on reset (PoweredBoard)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    portfile = os.environ["FP8HW_BOARD_PORTFILE"]
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.getsockname()[1]))
    os.replace(portfile + ".tmp", portfile)
    server.settimeout(120)
    conn, _ = server.accept()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def to_host(byte):
        try:
            conn.sendall(bytes((byte,)))
        except OSError:
            pass                            # the host has gone: the loop below ends

    receiver = EdgeReceiver(dut.tx, BIT_NS, to_host)
    cocotb.start_soon(receiver.run())
    start_ns, start_wall = get_sim_time("ns"), time.perf_counter()
    start_cpu = time.process_time()
    poll = Timer(POLL_BITS * BIT_NS, unit="ns")
    while True:
        try:
            data = conn.recv(1 << 16, socket.MSG_DONTWAIT)
            if not data:
                break                       # the host closed the link
        except BlockingIOError:
            data = b""
        if data:
            await drive_line(dut.rx, data, BIT_NS)
        else:
            await poll
    stats = os.environ.get("FP8HW_BOARD_STATSFILE")
    if stats:
        with open(stats, "w") as f:
            json.dump({"cycles": (get_sim_time("ns") - start_ns) / CLOCK_NS,
                       "wall_s": time.perf_counter() - start_wall,
                       "cpu_s": time.process_time() - start_cpu,
                       "framing_errors": receiver.framing_errors}, f)
    conn.close()
    server.close()
