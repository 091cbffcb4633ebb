#!/usr/bin/env python3
"""Does a multi-queue TUN steer a local flow to the queue its replies are written on?

Issue 12 ("IFF_MULTI_QUEUE, one queue per core") would let the thread that owns a
connection read that connection's packets from its own TUN queue, if the kernel sent
each flow to the queue that last wrote it (the tun driver's automatic flow steering,
`tun_flow_update` on write and the flow table lookup in its queue selection).

This probe measures it, as root, in a network namespace it creates and deletes:
a 4-queue TUN `mq0` (10.7.0.1/24); for each of N flows, a kernel socket connects to
10.7.0.2:80, the SYN is read from whichever queue it arrives on, a SYN-ACK is written
on a queue chosen at random, and the queue that delivers the kernel's ACK is noted.
If the flow table steered local flows, the ACK would come on the written queue every
time; 1 in 4 means the choice is the flow hash alone (docs/latency.md, section 7).

Usage: sudo python3 tools/tun_automq_probe.py [flows]   (default 200, at most 1000)
"""
import fcntl
import os
import random
import select
import socket
import struct
import subprocess
import sys

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI, IFF_MULTI_QUEUE = 0x0001, 0x1000, 0x0100
QUEUES = 4
NS = "utcp-automq-probe"


def checksum(b: bytes) -> int:
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn_ack_for(syn: bytes) -> bytes:
    """A SYN-ACK (no options) answering an IPv4 SYN."""
    ihl = (syn[0] & 15) * 4
    src, dst = syn[12:16], syn[16:20]
    sport, dport, seq = struct.unpack("!HHI", syn[ihl : ihl + 8])
    tcp = struct.pack("!HHIIBBHHH", dport, sport, 1000, seq + 1, 5 << 4, 0x12, 65535, 0, 0)
    pseudo = dst + src + struct.pack("!BBH", 0, 6, len(tcp))
    tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0, 64, 6, 0, dst, src)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def probe(flows: int) -> dict:
    queues = []
    for _ in range(QUEUES):
        fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", b"mq0", IFF_TUN | IFF_NO_PI | IFF_MULTI_QUEUE))
        queues.append(fd)
    subprocess.run("ip link set mq0 up && ip addr add 10.7.0.1/24 dev mq0", shell=True, check=True)
    same = other = lost = 0
    socks = []
    for _ in range(flows):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("10.7.0.2", 80))
        socks.append(s)
        ready, _, _ = select.select(queues, [], [], 1.0)
        if not ready:
            lost += 1
            continue
        syn = os.read(ready[0], 2048)
        target = random.randrange(QUEUES)
        os.write(queues[target], syn_ack_for(syn))
        ready, _, _ = select.select(queues, [], [], 1.0)
        if not ready:
            lost += 1
            continue
        for fd in ready:
            os.read(fd, 2048)
        if queues[target] in ready:
            same += 1
        else:
            other += 1
    for s in socks:
        s.close()
    return {"flows": flows, "ack_on_written_queue": same, "ack_elsewhere": other, "lost": lost}


def main() -> None:
    flows = min(int(sys.argv[1]) if len(sys.argv) > 1 else 200, 1000)
    if os.environ.get("UTCP_PROBE_IN_NS") != "1":
        subprocess.run(["ip", "netns", "add", NS], check=True)
        try:
            env = dict(os.environ, UTCP_PROBE_IN_NS="1")
            subprocess.run(["ip", "netns", "exec", NS, sys.executable, __file__, str(flows)], env=env, check=True)
        finally:
            subprocess.run(["ip", "netns", "del", NS], check=False)
        return
    r = probe(flows)
    share = r["ack_on_written_queue"] / max(1, r["ack_on_written_queue"] + r["ack_elsewhere"])
    print(f"{r}: {share:.0%} on the written queue (steering: 100%, flow hash alone: {1 / QUEUES:.0%})")


if __name__ == "__main__":
    main()
