#!/usr/bin/env python3
"""An independent Modbus peer for pressd's tests, built on pymodbus 3.6.

  modbus_peer.py --tcp PORT   --mode registers|plant
  modbus_peer.py --rtu DEVICE --baud 19200 --parity E --mode registers|plant

registers: unit 1 serves known values of every data type in every word order, laid
  out as printed (one JSON line on stdout) before serving. Word orders are computed
  here with Python's struct module, independently of pressd's codec.
plant: a two-device pneumatic rig as its datasheets describe it:
  unit 1, load-cell transmitter: input registers 0-1 = force in N, float32, CDAB;
          input register 2 = temperature in 0.1 degC, int16.
  unit 2, analog output module: holding register 0 = output 0..10000 counts
          (0..10 V), wired to an E/P regulator of 0..1 MPa.
  The cylinder (3117 mm^2, 40 N return spring) presses a cell; the regulator has a
  0.2 s lag; force noise 0.3 N RMS. Updated at 500 Hz.
"""
import argparse, asyncio, json, random, struct, sys

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext, ModbusSlaveContext
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer


def words(fmt, value, order):
    raw = struct.pack(">" + fmt, value)  # bytes A B C D (big-endian)
    if len(raw) == 2:
        return [struct.unpack(">H", raw)[0]]
    a, b, c, d = raw
    arranged = {"ABCD": (a, b, c, d), "CDAB": (c, d, a, b), "BADC": (b, a, d, c), "DCBA": (d, c, b, a)}[order]
    return [arranged[0] << 8 | arranged[1], arranged[2] << 8 | arranged[3]]


VECTORS = [("u16", "H", 54321), ("i16", "h", -1234), ("u32", "I", 3000000000), ("i32", "i", -123456), ("f32", "f", 123.456)]
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]


def registers_context():
    regs = [0] * 200
    layout = []
    addr = 0
    for name, fmt, value in VECTORS:
        for order in (ORDERS if fmt not in "Hh" else ["ABCD"]):
            w = words(fmt, value, order)
            regs[addr:addr + len(w)] = w
            layout.append({"type": name, "order": order, "address": addr, "value": value})
            addr += len(w)
    coils = [i % 3 == 0 for i in range(16)]
    unit = ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, regs), ir=ModbusSequentialDataBlock(0, regs),
                              co=ModbusSequentialDataBlock(0, coils), di=ModbusSequentialDataBlock(0, coils), zero_mode=True)
    return ModbusServerContext(slaves={1: unit}, single=False), {"layout": layout, "coils": coils, "size": 200}


def plant_context():
    transmitter = ModbusSlaveContext(ir=ModbusSequentialDataBlock(0, [0] * 16), hr=ModbusSequentialDataBlock(0, [0] * 16), zero_mode=True)
    aout = ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, [0] * 16), ir=ModbusSequentialDataBlock(0, [0] * 16), zero_mode=True)
    return ModbusServerContext(slaves={1: transmitter, 2: aout}, single=False), transmitter, aout


# "freeze" on standard input stops the transmitter's image where it is (its registers keep
# answering with the last value: a frozen transmitter), "thaw" lets it move again.
FROZEN = {"on": False}


async def read_commands():
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        if line.strip() in ("freeze", "thaw"):
            FROZEN["on"] = line.strip() == "freeze"
            print(json.dumps({"ok": line.strip()}), flush=True)


async def run_plant(transmitter, aout):
    chamber, dt = 0.0, 0.002
    while True:
        counts = aout.getValues(3, 0, 1)[0]
        command = min(counts, 10000) / 10000 * 1.0          # 0..10 V -> 0..1 MPa
        chamber += (min(command, 0.7) - chamber) * dt / 0.2  # 0.7 MPa supply
        force = max(0.0, chamber * 3117 - 40) + random.gauss(0, 0.3)
        if not FROZEN["on"]:
            transmitter.setValues(4, 0, words("f", force, "CDAB"))
        transmitter.setValues(4, 2, [struct.unpack(">H", struct.pack(">h", 251))[0]])
        await asyncio.sleep(dt)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", type=int)
    ap.add_argument("--rtu")
    ap.add_argument("--baud", type=int, default=19200)
    ap.add_argument("--parity", default="E")
    ap.add_argument("--mode", choices=["registers", "plant"], required=True)
    a = ap.parse_args()
    tasks = []
    if a.mode == "registers":
        context, info = registers_context()
    else:
        context, transmitter, aout = plant_context()
        info = {"mode": "plant"}
        tasks.append(asyncio.create_task(run_plant(transmitter, aout)))
        tasks.append(asyncio.create_task(read_commands()))
    print(json.dumps(info), flush=True)
    if a.tcp:
        await StartAsyncTcpServer(context=context, address=("127.0.0.1", a.tcp))
    else:
        await StartAsyncSerialServer(context=context, port=a.rtu, baudrate=a.baud, parity=a.parity, bytesize=8, stopbits=1)


if __name__ == "__main__":
    asyncio.run(main())
