#!/usr/bin/env python3
"""Probe the live Linux kernel's TCP policies that the `linux` profile mirrors.

Runs inside a network namespace it creates (utcp-lxprobe), with a TUN device: the kernel
is 192.168.0.1 (listening on port 8080), this script plays 192.0.2.1 and writes/reads raw
IPv4 packets on the TUN. Nothing leaves the namespace. Needs root.

Checks: the window scale offered in the SYN-ACK with tcp_rmem "4096 540000 15728640"
(and with "4096 87380 6291456"), and whether the first small data segments are ACKed at
once (quick-ACK) rather than after the delayed-ACK timer.

Usage: sudo python3 tools/linux_probe.py
"""
import fcntl, os, select, socket, struct, subprocess, sys, time

NS = "utcp-lxprobe"
LOCAL, REMOTE = "192.168.0.1", "192.0.2.1"


def sh(*a):
    subprocess.run(["ip", "netns", "exec", NS] + list(a), check=True)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_packet(seq, ack, flags, win, opts=b"", data=b"", sport=42000, dport=8080):
    opts += b"\0" * (-len(opts) % 4)
    off = (20 + len(opts)) // 4
    th = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, win, 0, 0) + opts
    src, dst = socket.inet_aton(REMOTE), socket.inet_aton(LOCAL)
    ph = src + dst + struct.pack("!BBH", 0, 6, len(th) + len(data))
    c = csum(ph + th + data)
    th = th[:16] + struct.pack("!H", c) + th[18:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(th) + len(data), 1, 0x4000, 64, 6, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return ip + th + data


def parse(p):
    ihl = (p[0] & 15) * 4
    t = p[ihl:]
    sport, dport, seq, ack, off, flags, win = struct.unpack("!HHIIBBH", t[:16])
    hl = (off >> 4) * 4
    opts, i, res = t[20:hl], 0, {}
    while i < len(opts):
        k = opts[i]
        if k == 0:
            break
        if k == 1:
            i += 1
            continue
        ln = opts[i + 1]
        if k == 3:
            res["wscale"] = opts[i + 2]
        if k == 2:
            res["mss"] = struct.unpack("!H", opts[i + 2:i + 4])[0]
        i += max(ln, 2)
    return dict(seq=seq, ack=ack, flags=flags, win=win, len=len(t) - hl, **res)


def child(rmem, rcvbuf=None):
    """Runs inside the namespace."""
    tun = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(tun, 0x400454CA, struct.pack("16sH", b"lxprobe0", 0x0001 | 0x1000))  # TUN | NO_PI
    for c in (["ip", "link", "set", "lo", "up"], ["ip", "link", "set", "lxprobe0", "up"],
              ["ip", "addr", "add", f"{LOCAL}/24", "dev", "lxprobe0"],
              ["ip", "route", "add", "192.0.2.0/24", "dev", "lxprobe0"],
              ["sysctl", "-qw", f"net.ipv4.tcp_rmem={rmem}"]):
        subprocess.run(c, check=True)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    ls.bind((LOCAL, 8080))
    ls.listen(4)

    def recv(timeout):
        end = time.time() + timeout
        while time.time() < end:
            r, _, _ = select.select([tun], [], [], end - time.time())
            if r:
                p = os.read(tun, 65536)
                if p[0] >> 4 == 4 and p[9] == 6:
                    return parse(p), time.time()
        return None, time.time()

    syn_opts = struct.pack("!BBH", 2, 4, 1460) + bytes([1, 3, 3, 7])  # mss 1460, nop, wscale 7
    os.write(tun, tcp_packet(0, 0, 0x02, 65535, syn_opts))
    sa, _ = recv(2)
    print(f"tcp_rmem {rmem!r}: SYN-ACK win {sa['win']} wscale {sa.get('wscale')} mss {sa.get('mss')}")
    isn = sa["seq"]
    os.write(tun, tcp_packet(1, isn + 1, 0x10, 512))
    conn, _ = ls.accept()
    seq = 1
    if rcvbuf:
        # Beyond the window with an empty receive queue (tcp_sequence()).
        n = sa["win"] + 248
        os.write(tun, tcp_packet(seq, isn + 1, 0x18, 512, data=b"x" * n))
        a, _ = recv(1)
        print(f"  SO_RCVBUF {rcvbuf}: window {sa['win']}, {n}-byte segment -> ACK {a['ack']} (whole: {a['ack'] == 1 + n})")
        conn.close()
        return
    for i in range(3):
        t0 = time.time()
        os.write(tun, tcp_packet(seq, isn + 1, 0x18, 512, data=b"x" * 100))
        seq += 100
        a, t1 = recv(1)
        print(f"  data segment {i + 1}: ACK {a['ack'] if a else None} after {1000 * (t1 - t0):.1f} ms")
        time.sleep(0.01)
    conn.close()


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else None)
        return
    subprocess.run(["ip", "netns", "del", NS], stderr=subprocess.DEVNULL)
    subprocess.run(["ip", "netns", "add", NS], check=True)
    try:
        for rmem in ("4096 540000 15728640", "4096 87380 6291456"):
            sh(sys.executable, os.path.abspath(__file__), "--child", rmem)
        sh(sys.executable, os.path.abspath(__file__), "--child", "4096 540000 15728640", "1000")
    finally:
        subprocess.run(["ip", "netns", "del", NS])


if __name__ == "__main__":
    main()
