#!/usr/bin/env python3
"""A misbehaving Modbus peer for pressd's tests.

Python 3 standard library only (no pymodbus), written from the Modbus specifications
(Application Protocol V1.1b3, Messaging on TCP/IP Implementation Guide V1.0b, Serial
Line V1.02) and independently of pressd's driver and of libmodbus. It serves valid
replies until it is told to misbehave.

  misbehaving_peer.py --tcp PORT [--unit 1] [--schedule ...] [--random SEED ...]
  misbehaving_peer.py --rtu DEVICE [--unit 1] ...    (a pseudo-terminal or serial port)

What it serves, on unit U (default 1); other units never get an answer:
  input registers   0..199: (0x1111 + 257*address) & 0xFFFF
  holding registers 0..199: (0x2222 + 257*address) & 0xFFFF, writable (0x06, 0x10)
  registers 8-9 of both tables: milliseconds since the peer started, unsigned 32-bit,
                    big-endian (ABCD): tells when a reply was made
  coils, discrete inputs 0..199: on where address % 3 == 0
  anything else: exception 0x01 (function) or 0x02 (address)

Misbehaviours. While one is active, every reply is replaced by it:
  garbage       random bytes (9..64 of them) instead of the reply
  noise         random bytes (1..16), then the reply
  duplicate     the reply, twice
  long-length   TCP: MBAP length 65535, the PDU with inverted data, then 32 random bytes
  short-length  TCP: MBAP length 2 (shorter than the PDU), the PDU with inverted data
  wrong-unit    the reply names unit U+1 (RTU: with a valid CRC), inverted data
  wrong-tid     TCP: the reply carries transaction id + 1, inverted data
  bad-crc       RTU: the reply with a wrong CRC, inverted data
  stall         the first half of the reply, then nothing more on that connection
                (TCP: requests on it are read and ignored until the client closes it)
  busy          exception 0x06 (server device busy), a well-formed reply
  close         TCP: the connection is closed instead of replying
  late          the reply, 0.5 s late (--late)
"Inverted data" (every register XOR 0xFFFF) makes a reply that a client wrongly
accepts show up as a wrong value.

Control: one command per line on stdin, each acknowledged by one JSON line on stdout:
  KIND SECONDS     misbehave for SECONDS from now          (busy 2)
  KIND xCOUNT      misbehave on the next COUNT replies     (garbage x1)
  normal           stop misbehaving
  stats            counters: connections, requests, good replies, misbehaviours, and
                   requests answered per function code (fc3, fc4, fc6, fc16, ...)
--schedule "START:KIND:SECONDS,..." does the same at fixed times (seconds after start);
--random SEED makes a random schedule over --span seconds: windows of --window MIN:MAX
seconds (0.1:10) separated by quiet gaps of --gap MIN:MAX seconds (1:6), the kinds
taken in a shuffled cycle, the first after --quiet seconds (2). The seed and the whole
schedule are in the first stdout line and on stderr, so a failure can be replayed with
the same seed (or pasted into --schedule).

The first stdout line is JSON: {"unit", "port"|"device", "seed", "schedule": [{"start",
"end", "kind"}]}, times in seconds after start (the same clock as registers 8-9).
Every misbehaving reply is logged on stderr as "t=SECONDS conn=N KIND".
"""
import argparse, asyncio, json, os, random, stat, sys, termios, time, tty

TCP_KINDS = ["garbage", "noise", "duplicate", "long-length", "short-length", "wrong-unit", "wrong-tid", "stall", "busy", "close", "late"]
RTU_KINDS = ["garbage", "noise", "duplicate", "wrong-unit", "bad-crc", "stall", "busy", "late"]
SIZE = 200
CLOCK_ADDR = 8


class Peer:
    def __init__(self, unit, kinds, seed, late):
        self.unit = unit
        self.kinds = kinds
        self.rng = random.Random(seed)
        self.late = late
        self.t0 = time.monotonic()
        self.holding = [(0x2222 + 257 * a) & 0xFFFF for a in range(SIZE)]
        self.inputs = [(0x1111 + 257 * a) & 0xFFFF for a in range(SIZE)]
        self.bits = [a % 3 == 0 for a in range(SIZE)]
        self.windows = []      # [start, end, kind], seconds after start
        self.counted = []      # [kind, remaining]
        self.stats = {"connections": 0, "requests": 0, "good": 0, "misbehaved": 0, "ignored": 0}

    def now(self):
        return time.monotonic() - self.t0

    def log(self, conn, kind):
        self.stats["misbehaved"] += 1
        print(f"t={self.now():.3f} conn={conn} {kind}", file=sys.stderr, flush=True)

    def misbehaviour(self):
        """The misbehaviour for the next reply, if any (counted ones first)."""
        if self.counted:
            kind, left = self.counted[0]
            if left <= 1:
                self.counted.pop(0)
            else:
                self.counted[0][1] = left - 1
            return kind
        t = self.now()
        for start, end, kind in self.windows:
            if start <= t < end:
                return kind
        return None

    def command(self, line):
        words = line.split()
        if not words:
            return {"ok": False, "error": "empty"}
        if words[0] == "normal":
            self.windows = [w for w in self.windows if w[1] <= self.now()]
            self.counted = []
            return {"ok": True, "t": self.now()}
        if words[0] == "stats":
            return dict(self.stats, ok=True, t=self.now())
        kind = words[0]
        if kind not in self.kinds:
            return {"ok": False, "error": f"unknown misbehaviour {kind!r} (one of {', '.join(self.kinds)})"}
        arg = words[1] if len(words) > 1 else "x1"
        t = self.now()
        if arg.startswith("x"):
            self.counted.append([kind, int(arg[1:])])
            return {"ok": True, "t": t, "kind": kind, "count": int(arg[1:])}
        self.windows.append([t, t + float(arg), kind])
        return {"ok": True, "t": t, "kind": kind, "start": t, "end": t + float(arg)}

    # --- registers -------------------------------------------------------------------

    def registers(self, table, address, count):
        regs = list((self.holding if table == 3 else self.inputs)[address:address + count])
        ms = int(self.now() * 1000) & 0xFFFFFFFF
        for i, a in enumerate(range(address, address + count)):
            if a == CLOCK_ADDR:
                regs[i] = ms >> 16
            elif a == CLOCK_ADDR + 1:
                regs[i] = ms & 0xFFFF
        return regs

    def answer(self, pdu, invert=False):
        """The reply PDU to a request PDU (function code first)."""
        if pdu:
            key = f"fc{pdu[0]}"
            self.stats[key] = self.stats.get(key, 0) + 1
        fc = pdu[0]
        def exc(code):
            return bytes([fc | 0x80, code])
        if fc in (1, 2, 3, 4):
            if len(pdu) != 5:
                return exc(3)
            address, count = int.from_bytes(pdu[1:3], "big"), int.from_bytes(pdu[3:5], "big")
            limit = 2000 if fc in (1, 2) else 125
            if not 1 <= count <= limit:
                return exc(3)
            if address + count > SIZE:
                return exc(2)
            if fc in (1, 2):
                bits = self.bits[address:address + count]
                data = bytearray((count + 7) // 8)
                for i, b in enumerate(bits):
                    if b != invert:
                        data[i // 8] |= 1 << (i % 8)
                return bytes([fc, len(data)]) + bytes(data)
            regs = self.registers(fc, address, count)
            if invert:
                regs = [r ^ 0xFFFF for r in regs]
            return bytes([fc, 2 * count]) + b"".join(r.to_bytes(2, "big") for r in regs)
        if fc == 6:
            if len(pdu) != 5:
                return exc(3)
            address = int.from_bytes(pdu[1:3], "big")
            if address >= SIZE:
                return exc(2)
            if not invert:
                self.holding[address] = int.from_bytes(pdu[3:5], "big")
            return bytes(pdu)
        if fc == 16:
            if len(pdu) < 6:
                return exc(3)
            address, count, nbytes = int.from_bytes(pdu[1:3], "big"), int.from_bytes(pdu[3:5], "big"), pdu[5]
            if not 1 <= count <= 123 or nbytes != 2 * count or len(pdu) != 6 + nbytes:
                return exc(3)
            if address + count > SIZE:
                return exc(2)
            if not invert:
                for i in range(count):
                    self.holding[address + i] = int.from_bytes(pdu[6 + 2 * i:8 + 2 * i], "big")
            return bytes(pdu[0:5])
        if fc == 5:
            if len(pdu) != 5 or pdu[3:5] not in (b"\xff\x00", b"\x00\x00"):
                return exc(3)
            address = int.from_bytes(pdu[1:3], "big")
            if address >= SIZE:
                return exc(2)
            self.bits[address] = pdu[3] == 0xFF
            return bytes(pdu)
        return exc(1)


# --- Modbus TCP ----------------------------------------------------------------------

async def serve_tcp_connection(peer, reader, writer):
    peer.stats["connections"] += 1
    conn = peer.stats["connections"]
    stalled = False
    try:
        while True:
            header = await reader.readexactly(7)
            tid, proto, length, unit = header[0:2], header[2:4], int.from_bytes(header[4:6], "big"), header[6]
            if length < 2 or length > 254:
                break  # not Modbus: drop the connection, as servers do
            pdu = await reader.readexactly(length - 1)
            peer.stats["requests"] += 1
            if stalled or proto != b"\x00\x00" or unit != peer.unit:
                peer.stats["ignored"] += 1
                continue
            kind = peer.misbehaviour()
            if kind is None:
                out = peer.answer(pdu)
                writer.write(tid + b"\x00\x00" + (len(out) + 1).to_bytes(2, "big") + bytes([unit]) + out)
                await writer.drain()
                peer.stats["good"] += 1
                continue
            peer.log(conn, kind)
            if kind == "garbage":
                writer.write(bytes(peer.rng.randrange(256) for _ in range(peer.rng.randint(9, 64))))
            elif kind in ("noise", "duplicate"):
                out = peer.answer(pdu)
                frame = tid + b"\x00\x00" + (len(out) + 1).to_bytes(2, "big") + bytes([unit]) + out
                if kind == "noise":
                    writer.write(bytes(peer.rng.randrange(256) for _ in range(peer.rng.randint(1, 16))) + frame)
                else:
                    writer.write(frame + frame)
            elif kind == "long-length":
                out = peer.answer(pdu, invert=True)
                writer.write(tid + b"\x00\x00\xff\xff" + bytes([unit]) + out + bytes(peer.rng.randrange(256) for _ in range(32)))
            elif kind == "short-length":
                out = peer.answer(pdu, invert=True)
                writer.write(tid + b"\x00\x00\x00\x02" + bytes([unit]) + out)
            elif kind == "wrong-unit":
                out = peer.answer(pdu, invert=True)
                writer.write(tid + b"\x00\x00" + (len(out) + 1).to_bytes(2, "big") + bytes([(unit + 1) % 256]) + out)
            elif kind == "wrong-tid":
                out = peer.answer(pdu, invert=True)
                bad = ((int.from_bytes(tid, "big") + 1) & 0xFFFF).to_bytes(2, "big")
                writer.write(bad + b"\x00\x00" + (len(out) + 1).to_bytes(2, "big") + bytes([unit]) + out)
            elif kind == "stall":
                out = peer.answer(pdu)
                frame = tid + b"\x00\x00" + (len(out) + 1).to_bytes(2, "big") + bytes([unit]) + out
                writer.write(frame[:len(frame) // 2])
                stalled = True
            elif kind == "busy":
                writer.write(tid + b"\x00\x00\x00\x03" + bytes([unit, pdu[0] | 0x80, 0x06]))
            elif kind == "close":
                break
            elif kind == "late":
                await asyncio.sleep(peer.late)
                out = peer.answer(pdu)
                writer.write(tid + b"\x00\x00" + (len(out) + 1).to_bytes(2, "big") + bytes([unit]) + out)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


# --- Modbus RTU ----------------------------------------------------------------------

def crc16(data):
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def rtu_request_length(buf):
    """Bytes in the request frame that starts buf, or None until enough has arrived."""
    if len(buf) < 2:
        return None
    fc = buf[1]
    if fc in (1, 2, 3, 4, 5, 6):
        return 8
    if fc in (15, 16):
        return 9 + buf[6] if len(buf) >= 7 else None
    return len(buf) + 2  # unknown: wait for the line to go quiet


async def serve_rtu(peer, path):
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    termios.tcflush(fd, termios.TCIOFLUSH)
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()
    loop.add_reader(fd, lambda: queue.put_nowait(os.read(fd, 512)))
    buf = b""
    conn = 1
    peer.stats["connections"] = 1

    def send(frame):
        os.write(fd, frame)

    while True:
        try:
            chunk = await asyncio.wait_for(queue.get(), timeout=0.02 if buf else None)
            buf += chunk
        except asyncio.TimeoutError:
            buf = b""  # 20 ms of silence ends a frame: drop what is incomplete
            continue
        while (n := rtu_request_length(buf)) is not None and len(buf) >= n:
            frame, buf = buf[:n], buf[n:]
            if crc16(frame[:-2]) != frame[-2:]:
                buf = b""
                break
            peer.stats["requests"] += 1
            unit, pdu = frame[0], frame[1:-2]
            if unit != peer.unit:
                peer.stats["ignored"] += 1
                continue
            kind = peer.misbehaviour()
            if kind is None:
                out = bytes([unit]) + peer.answer(pdu)
                send(out + crc16(out))
                peer.stats["good"] += 1
                continue
            peer.log(conn, kind)
            if kind == "garbage":
                send(bytes(peer.rng.randrange(256) for _ in range(peer.rng.randint(9, 64))))
            elif kind in ("noise", "duplicate"):
                out = bytes([unit]) + peer.answer(pdu)
                frame = out + crc16(out)
                if kind == "noise":
                    send(bytes(peer.rng.randrange(256) for _ in range(peer.rng.randint(1, 16))) + frame)
                else:
                    send(frame + frame)
            elif kind == "wrong-unit":
                out = bytes([(unit + 1) % 248 or 1]) + peer.answer(pdu, invert=True)
                send(out + crc16(out))
            elif kind == "bad-crc":
                out = bytes([unit]) + peer.answer(pdu, invert=True)
                crc = crc16(out)
                send(out + bytes([crc[0] ^ 0x5A, crc[1]]))
            elif kind == "stall":
                out = bytes([unit]) + peer.answer(pdu)
                frame = out + crc16(out)
                send(frame[:len(frame) // 2])
            elif kind == "busy":
                out = bytes([unit, pdu[0] | 0x80, 0x06])
                send(out + crc16(out))
            elif kind == "late":
                out = bytes([unit]) + peer.answer(pdu)
                loop.call_later(peer.late, send, out + crc16(out))


# --- schedule and control ------------------------------------------------------------

def parse_range(text):
    lo, hi = (float(x) for x in text.split(":"))
    return lo, hi


def random_schedule(rng, kinds, span, window, gap, quiet):
    schedule, t, cycle = [], quiet, []
    while True:
        if not cycle:
            cycle = list(kinds)
            rng.shuffle(cycle)
        duration = rng.uniform(*window)
        if t + duration > span:
            return schedule
        schedule.append([round(t, 3), round(t + duration, 3), cycle.pop()])
        t += duration + rng.uniform(*gap)


async def control(peer, exit_on_eof):
    mode = os.fstat(0).st_mode
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(0)):
        return  # stdin is a file or /dev/null: no control channel
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        print(json.dumps(peer.command(line.decode().strip())), flush=True)
    if exit_on_eof:
        os._exit(0)  # the test that started us is gone


async def main():
    ap = argparse.ArgumentParser(description="A misbehaving Modbus TCP/RTU peer (stdlib only).")
    ap.add_argument("--tcp", type=int, help="listen on 127.0.0.1:PORT (0: any free port)")
    ap.add_argument("--rtu", help="serve Modbus RTU on this serial device or pseudo-terminal")
    ap.add_argument("--unit", type=int, default=1)
    ap.add_argument("--schedule", default="", help="START:KIND:SECONDS,... (seconds after start)")
    ap.add_argument("--random", type=int, metavar="SEED", help="a random schedule from this seed")
    ap.add_argument("--seed", type=int, help="seed for the random bytes only (default: --random's, or random)")
    ap.add_argument("--span", type=float, default=60, help="random schedule: seconds it covers")
    ap.add_argument("--window", default="0.1:10", help="random schedule: window length MIN:MAX seconds")
    ap.add_argument("--gap", default="1:6", help="random schedule: quiet time between windows MIN:MAX seconds")
    ap.add_argument("--quiet", type=float, default=2, help="random schedule: seconds before the first window")
    ap.add_argument("--kinds", help="random schedule: misbehaviours to use, comma-separated (default: all)")
    ap.add_argument("--late", type=float, default=0.5, help="seconds a late reply is late")
    ap.add_argument("--exit-on-eof", action="store_true", help="exit when stdin closes (for tests)")
    a = ap.parse_args()
    if (a.tcp is None) == (a.rtu is None):
        ap.error("give exactly one of --tcp PORT or --rtu DEVICE")
    kinds = TCP_KINDS if a.tcp is not None else RTU_KINDS
    seed = a.random if a.random is not None else a.seed if a.seed is not None else random.randrange(1 << 31)
    peer = Peer(a.unit, kinds, seed, a.late)
    if a.schedule:
        for item in a.schedule.split(","):
            start, kind, seconds = item.split(":")
            if kind not in kinds:
                ap.error(f"unknown misbehaviour {kind!r} (one of {', '.join(kinds)})")
            peer.windows.append([float(start), float(start) + float(seconds), kind])
    if a.random is not None:
        use = a.kinds.split(",") if a.kinds else kinds
        for k in use:
            if k not in kinds:
                ap.error(f"unknown misbehaviour {k!r} (one of {', '.join(kinds)})")
        peer.windows += random_schedule(random.Random(seed), use, a.span, parse_range(a.window), parse_range(a.gap), a.quiet)
    info = {"unit": a.unit, "seed": seed, "schedule": [{"start": s, "end": e, "kind": k} for s, e, k in peer.windows]}
    if a.tcp is not None:
        server = await asyncio.start_server(lambda r, w: serve_tcp_connection(peer, r, w), "127.0.0.1", a.tcp)
        info["port"] = server.sockets[0].getsockname()[1]
        serving = server.serve_forever()
    else:
        info["device"] = a.rtu
        serving = serve_rtu(peer, a.rtu)
    peer.t0 = time.monotonic()
    print(f"seed={seed} schedule={json.dumps(info['schedule'])}", file=sys.stderr, flush=True)
    print(json.dumps(info), flush=True)
    await asyncio.gather(serving, control(peer, a.exit_on_eof))


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
