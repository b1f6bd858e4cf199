"""The simulated board: ``hw.soc.system.ArraySystem`` whose UART pins are bridged to a TCP
socket, so that the unmodified host driver (``host.driver``) runs against the RTL.

Environment: FP8HW_HW_PARAMS (JSON: divisor), FP8HW_BOARD_PORTFILE (the listening port
is written there once the board is ready). The test ends when the host disconnects.
"""

import json
import os
import socket

import cocotb
from cocotb.triggers import ClockCycles

from sim.lanes import start_clock
from sim.uart_model import LineReceiver, send_bytes

DIVISOR = json.loads(os.environ["FP8HW_HW_PARAMS"])["divisor"]
POLL = 8 * DIVISOR                          # cycles between looks at the socket


@cocotb.test()
async def bridge(dut):
    dut.rx.value = 1
    await start_clock(dut)
    line = LineReceiver(dut.clk, dut.tx, DIVISOR)
    cocotb.start_soon(line.run())
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    portfile = os.environ["FP8HW_BOARD_PORTFILE"]
    with open(portfile + ".tmp", "w") as f:
        f.write(str(server.getsockname()[1]))
    os.replace(portfile + ".tmp", portfile)
    server.settimeout(120)
    conn, _ = server.accept()
    conn.setblocking(False)
    while True:
        try:
            data = conn.recv(4096)
            if not data:
                break                       # the host closed the link
        except BlockingIOError:
            data = b""
        if data:
            await send_bytes(dut.clk, dut.rx, data, DIVISOR)
        else:
            await ClockCycles(dut.clk, POLL)
        if line.data:
            conn.sendall(bytes(line.data))
            line.data.clear()
    conn.close()
    server.close()
