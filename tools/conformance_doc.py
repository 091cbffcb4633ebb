#!/usr/bin/env python3
"""Regenerate docs/conformance.md from `utcp script --json` runs.

Usage: cargo build --release && python3 tools/conformance_doc.py
(UTCP_BIN and UTCP_TCP_TESTSUITE override the binary and the corpus location.)
"""
import json, re, subprocess, sys, collections, datetime

import os
WT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("UTCP_BIN", os.path.join(WT, "target/release/utcp"))
ROOT = os.environ.get("UTCP_TCP_TESTSUITE", os.path.join(WT, "../shared/tcp-testsuite"))
ROOT = os.path.normpath(ROOT)
FOLDERS = ["state-event-engine", "rcv-data-segments", "snd-syn", "socket-api", "snippets", "rcv-icmp"]


def run(args):
    out = subprocess.run([BIN, "script", "--json"] + args, capture_output=True, text=True).stdout
    res = {}
    for l in out.splitlines():
        if l.startswith("{"):
            o = json.loads(l)
            res[o["script"].replace(ROOT + "/", "")] = o
    return res

fb = run(["--profile", "freebsd"] + [f"{ROOT}/{f}" for f in FOLDERS])
import glob
own_files = sorted(glob.glob(f"{WT}/tests/scripts/*.pkt"))
own = subprocess.run([BIN, "script", "--json"] + own_files, capture_output=True, text=True).stdout
own = [json.loads(l) for l in own.splitlines() if l.startswith("{")]
lin = subprocess.run([BIN, "script", "--json", "--profile", "linux", f"{WT}/tests/scripts/linux"],
                     capture_output=True, text=True).stdout
lin = [json.loads(l) for l in lin.splitlines() if l.startswith("{")]

# The linux profile: (knob, value, Linux setting it mirrors).
LINUX_KNOBS = [
    ("`recv_buffer`", "540000", "tcp_rmem[1] (SO_RCVBUF default)"),
    ("`send_buffer`", "262144", "tcp_wmem[1] (SO_SNDBUF default)"),
    ("`window_scale_space`", "15728640", "max(tcp_rmem[2], rmem_max): offered shift ilog2(space) - 15 = 8 (tcp_select_initial_window)"),
    ("`window_scale`, `timestamps`, `sack`, `dsack`", "on", "tcp_window_scaling, tcp_timestamps, tcp_sack, tcp_dsack = 1"),
    ("`slow_start_after_idle`", "off", "tcp_slow_start_after_idle = 0"),
    ("`syn_retries`", "5", "tcp_syn_retries = tcp_synack_retries = 5"),
    ("`initial_window_segments`", "10", "TCP_INIT_CWND (IW10, RFC 6928)"),
    ("`min_rto`, `initial_rto`, `max_rto`", "200 ms, 1 s, 120 s", "TCP_RTO_MIN, TCP_TIMEOUT_INIT, TCP_RTO_MAX"),
    ("`delayed_ack`, `ack_every`", "40 ms, 2 full segments", "TCP_DELACK_MIN; __tcp_ack_snd_check (more than one full frame)"),
    ("`quickack_segments`", "16", "TCP_MAX_QUICKACKS: the first segments, and again after idle > RTO, are ACKed at once (tcp_incr_quickack)"),
    ("`nagle_minshall`", "on", "tcp_nagle_check (Minshall's variant)"),
    ("`accept_beyond_window_if_empty`", "on", "tcp_sequence(): an in-sequence segment starting inside a non-zero window and ending beyond it is accepted whole when the receive queue is empty"),
    ("`msl`", "30 s", "TCP_TIMEWAIT_LEN = 60 s = 2 MSL"),
    ("`data_retries`", "15", "tcp_retries2 = 15"),
    ("`rfc5961`, `rfc5961_syn`, `rfc1337`", "on, on, off", "RFC 5961 challenge ACKs; tcp_rfc1337 = 0"),
    ("profile `sockbuf_doubling`", "on", "SO_RCVBUF/SO_SNDBUF report twice the value set (socket(7)); the engine buffer gets the value as set"),
]
LINUX_SYSCTLS = [
    ("tcp_rmem", "`recv_buffer` = [1], `window_scale_space` = max([2], rmem_max)"),
    ("tcp_wmem", "`send_buffer` = [1]"),
    ("tcp_sack / tcp_dsack / tcp_timestamps / tcp_window_scaling", "`sack` / `dsack` / `timestamps` / `window_scale`"),
    ("tcp_slow_start_after_idle", "`slow_start_after_idle`"),
    ("tcp_syn_retries, tcp_synack_retries", "`syn_retries` (one count; differing values are UNSUPPORTED)"),
    ("tcp_retries2, tcp_rfc1337, tcp_challenge_ack_limit, tcp_keepalive_*", "`data_retries`, `rfc1337`, `challenge_ack_limit`, keepalive timing"),
    ("tcp_min_tso_segs, tcp_tso_win_divisor", "no TSO: the defaults (2, 3) are accepted, other values UNSUPPORTED"),
    ("tcp_congestion_control", "`congestion_control`: reno = NewReno (RFC 5681/6582), cubic = CUBIC (RFC 9438); others UNSUPPORTED"),
    ("tcp_early_retrans", "`tail_loss_probe`: 3/4 = RFC 8985 §7 TLP on, 0 off; others UNSUPPORTED"),
    ("tcp_recovery", "bit 0x1 -> `rack` (RACK time-based loss detection, RFC 8985 §6); bits 0x2/0x4 UNSUPPORTED"),
    ("tcp_frto, tcp_ecn", "0 accepted (the engine has none); others UNSUPPORTED"),
    ("tcp_mtu_probing, tcp_base_mss, tcp_probe_interval, route.mtu_expires", "`mtu_probing` 0/1/2 (black-hole fallback and RFC 4821 probes), `base_mss`, `mtu_probe_interval` (the search restarts), `pmtu_expires` (an ICMP-learned PMTU is forgotten, RFC 1191 §6.3)"),
    ("tcp_min_rtt_wlen", "`min_rtt_window`: RACK.min_RTT's windowed minimum (RFC 8985 §6.2)"),
    ("tcp_syncookies", "`syn_cookies`: 0 = Never, 1 = OnOverflow, 2 = Always (RFC 4987 §3.6)"),
    ("tcp_no_metrics_save, tcp_fastopen (0/1)", "ignored with a note (no metrics cache; TFO calls are UNSUPPORTED)"),
    ("`ip route ... mtu N advmss M initcwnd K rto_min T`, `ip link set ... mtu N`", "`mtu`, `mss` (advertised only), `initial_window_segments`, `min_rto`"),
]

_V6 = {}
def is_v6(p):
    """The script runs over IPv6 (`--ip_version=ipv6` in its header)."""
    if p not in _V6:
        try:
            _V6[p] = "--ip_version=ipv6" in open(os.path.join(ROOT, p)).read()
        except OSError:
            _V6[p] = False
    return _V6[p]

# (key, title, class, explanation, predicate(path, reason))
RFC = "RFC requirement utcp misses"
FBSD = "FreeBSD-specific policy"
GAP = "not runnable here"
CATS = [
    ("data-in-syn", "Data carried by a SYN in SYN-SENT is not delivered", RFC,
     "RFC 9293 §3.10.7.3 (SYN-SENT, SYN bit set, our SYN not yet acknowledged): \"If there are other controls or text "
     "in the segment, queue them for processing after the ESTABLISHED state has been reached.\" utcp discards the "
     "text of a SYN received in SYN-SENT (simultaneous open), so `read()` finds nothing after the handshake.",
     lambda p, r: "read() returned -1 EAGAIN, expected" in r and "syn-sent" in p),
    ("mss-tiny-mtu", "MSS for a 72-byte MTU", RFC,
     "RFC 9293 §3.7.1: the MSS to send \"should be equal to the effective MTU minus the fixed IP and TCP headers\" "
     "(72 - 40 = 32). utcp's `Config::effective_mss` clamps the advertised MSS to at least 88 bytes, which claims "
     "more than the link can carry. Only degenerate MTUs (< 128) are affected.",
     lambda p, r: "mtu-72" in p),
    ("fin-on-ack", "The FIN is re-sent on ACKs that FreeBSD sends bare", RFC,
     "With the freebsd profile's `Config::resend_fin_with_ack`, utcp sets FIN on an ACK that RFC 9293 §3.10.7.4 and "
     "RFC 5961 specify as `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>` (a challenge ACK or the answer to an unacceptable "
     "segment), where FreeBSD sends it bare.",
     lambda p, r: "expected . but got F." in r),
    ("syn-in-time-wait", "A new SYN in TIME-WAIT re-opens the connection on FreeBSD", FBSD,
     "FreeBSD accepts a SYN beyond RCV.NXT in TIME-WAIT as a new connection through the listening socket (`S.` with a "
     "new ISN). RFC 1122 §4.2.2.13 and RFC 6191 make this a MAY. utcp keeps the TIME-WAIT connection and answers as "
     "RFC 9293 §3.10.7.4 with RFC 5961 §4 prescribe for a SYN in a synchronized state (a challenge ACK, or a RST "
     "with RFC 5961 off) — which is what the scripts' `#ifdef STANDARD` branch expects.",
     lambda p, r: re.search(r"rcv-syn(-fin|-ack)?-time-wait", p) is not None),
    ("rst-time-wait", "RST in TIME-WAIT", FBSD,
     "FreeBSD ignores RSTs in TIME-WAIT (the RFC 1337 remedy, an informational recommendation). RFC 9293 §3.10.7.4 "
     "(TIME-WAIT, fourth check): \"If the RST bit is set, then enter the CLOSED state, delete the TCB, and return\"; "
     "with RFC 5961 an in-window RST that is not at RCV.NXT draws a challenge ACK (§3.2).",
     lambda p, r: re.search(r"rcv-rst(-ack)?-time-wait", p) is not None),
    ("rst-closing-error", "No ECONNRESET after a RST in CLOSING or LAST-ACK", FBSD,
     "RFC 9293 §3.10.7.4 for CLOSING, LAST-ACK and TIME-WAIT: \"If the RST bit is set, then enter the CLOSED state, "
     "delete the TCB, and return\" — no reset is signalled to the user, who has already closed. FreeBSD still "
     "reports ECONNRESET through SO_ERROR.",
     lambda p, r: "SO_ERROR) gave 0, expected ECONNRESET" in r),
    ("insecure-syn-rst", "RST format for an in-window SYN with RFC 5961 off", FBSD,
     "With net.inet.tcp.insecure_syn=1 (`Config::rfc5961_syn = false`) both stacks follow RFC 793 (\"If the SYN is "
     "in the window it is an error, send a reset\"), which does not fix the fields of that reset. utcp sends "
     "`<SEQ=SND.NXT><CTL=RST>`, FreeBSD `<SEQ=SND.NXT><ACK=RCV.NXT><CTL=RST,ACK>`.",
     lambda p, r: "expected R. but got R" in r),
    ("ack-listen", "SYN-ACK to a listening socket", FBSD,
     "RFC 9293 §3.10.7.2 (LISTEN, second check): \"Any acknowledgment is bad if it arrives on a connection still in "
     "the LISTEN state. An acceptable reset segment should be formed for any arriving ACK-bearing segment\" — "
     "`<SEQ=SEG.ACK><CTL=RST>`, which utcp sends by default. FreeBSD drops the SYN-ACK silently; the freebsd "
     "profile sets `Config::listen_drop_syn_ack` to do the same.",
     lambda p, r: "rcv-syn-ack-listen" in p),
    ("fin-without-ack", "Unacceptable segments without ACK in TIME-WAIT", FBSD,
     "A `F` segment without the ACK bit and below RCV.NXT is not acceptable; RFC 9293 §3.10.7.4 (first check): \"If "
     "an incoming segment is not acceptable, an acknowledgment should be sent in reply\". utcp sends that ACK; "
     "FreeBSD drops segments without ACK before the sequence check (see the snippets README, note 2).",
     lambda p, r: "rcv-fin-time-wait" in p),
    ("ack-below-rcvnxt", "An ACK whose sequence number is below RCV.NXT", FBSD,
     "The script acknowledges our FIN with `< . 1:1(0) ack 2` after its own FIN took sequence number 1, so "
     "SEG.SEQ < RCV.NXT and the segment is not acceptable. RFC 9293 §3.10.7.4: send an ACK (here it carries the "
     "unacknowledged FIN again, `Config::resend_fin_with_ack`) and \"drop the unacceptable segment and return\" — "
     "utcp stays in LAST-ACK/CLOSING. FreeBSD also processes the ACK field of such a segment and closes.",
     lambda p, r: p.startswith("snippets/") and ("closed-via-last-ack" in p or "time-wait-via-closing" in p)),
    ("ack-time-wait-ooo", "An in-window ACK beyond RCV.NXT in TIME-WAIT", FBSD,
     "FreeBSD answers an ACK with SEG.SEQ > RCV.NXT in TIME-WAIT with an ACK. RFC 9293 §3.10.7.4 only asks TIME-WAIT "
     "to acknowledge a retransmitted FIN (and restart the 2 MSL timer); the segment is acceptable and carries "
     "nothing to process, so utcp sends nothing.",
     lambda p, r: "rcv-ack-time-wait" in p),
    ("syn-rcvd-window", "RST just beyond the SYN-ACK's window in SYN-RECEIVED", FBSD,
     "The SYN-ACK advertises 65535 (a SYN's window is never scaled, RFC 7323 §2.2) while the receive buffer holds "
     "65536 bytes. With `Config::window_full_space` utcp's RCV.WND is the whole free space, so a RST at RCV.NXT+65535 "
     "is inside the window: with RFC 5961 it draws a challenge ACK (§3.2), without it it resets the embryonic "
     "connection (RFC 9293 §3.10.7.4, then the script's ACK meets no connection and gets a RST). FreeBSD's syncache "
     "bounds the window by what the SYN-ACK advertised and drops the RST. Both readings satisfy RFC 9293, whose "
     "acceptability test is stated in terms of RCV.WND.",
     lambda p, r: "syn-rcvd-via-listen-outside-right" in p),
    ("unlisted-ack", "ACKs the script does not list", FBSD,
     "packetdrill only notices an unexpected segment when a later `>` line reads it, so a script may leave out "
     "segments that come after its last `>` line; utcp's runner flags any unlisted segment once the script moves "
     "past its time. Here utcp acknowledges a retransmitted FIN (`< F. 1:1(0) ack 2` in CLOSING: SEG.SEQ < RCV.NXT, "
     "so the segment is not acceptable and RFC 9293 §3.10.7.4 says \"an acknowledgment should be sent in reply\"), "
     "which the script does not list.",
     lambda p, r: "time-wait-via-closing" in p),
    ("syn-backoff", "SYN retransmission schedule", FBSD,
     "FreeBSD retransmits SYNs after 1 s and then 2.2 s more (its tcp_syn_backoff table and the 200 ms "
     "net.inet.tcp.rexmit_slop). utcp doubles the RTO from 1 s as RFC 6298 (5.5) and (2.1) prescribe: 1 s, then "
     "2 s more.",
     lambda p, r: "timing error" in r and p.startswith("snd-syn/")),
    ("noopt-mss", "TCP_NOOPT also drops the MSS option on FreeBSD", FBSD,
     "FreeBSD's TCP_NOOPT sends SYNs and SYN-ACKs without any option, the MSS included (its receive MSS is then "
     "the default 536). utcp maps TCP_NOOPT onto `Config::window_scale`, `timestamps` and `sack` (off) and keeps "
     "the MSS option with its real receive MSS, which RFC 9293 §3.7.1 asks for (SHOULD-5: send an MSS option in "
     "every SYN when the receive MSS differs from 536).",
     lambda p, r: "without-options" in p or "noopt" in p),
]
UCATS = [
    ("ip-version", "IP version", "Only `--ip_version=ipv4` and `ipv6` are run (not `ipv4-mapped-ipv6`).",
     lambda p, r: "ip_version" in r),
    ("sockstat-p", "`sockstat -p 8080 | grep -c SYN_RCVD`",
     "This assertion counts every connection on the port, including embryonic SYN-RECEIVED ones held by the "
     "listener. The Stack API gives the states of connections the application holds, not of the listener's "
     "embryonic ones, so the runner cannot evaluate it (it would need an engine call enumerating connection states).",
     lambda p, r: "sockstat" in r),
    ("drop-synfin", "net.inet.tcp.drop_synfin=1",
     "FreeBSD can drop SYN+FIN segments (a scan defence); RFC 9293 has no such rule and utcp has no knob for it.",
     lambda p, r: "drop_synfin" in r),
    ("ecn", "ECN", "ECN (RFC 3168) is not implemented; scripts that enable it or check ECN codepoints are not run.",
     lambda p, r: "ecn" in r.lower()),
    ("keepinit", "TCP_KEEPINIT",
     "FreeBSD bounds connection establishment by time (TCP_KEEPINIT); utcp bounds it by `Config::syn_retries`.",
     lambda p, r: "KEEPINIT" in r),
    ("syncookies", "SYN cookies", "utcp has no SYN cookies (RFC 4987 describes them; nothing requires them).",
     lambda p, r: "syncookies" in r),
    ("encap-md5", "UDP encapsulation and TCP-MD5",
     "UDP encapsulation of TCP and TCP-MD5 signatures (RFC 2385) have no utcp counterpart.",
     lambda p, r: "UDP encapsulation" in r or "MD5" in r),
    ("misc", "Other FreeBSD features",
     "IP_TTL and IP_TOS socket options: utcp has one TTL for the whole stack (`Config::ttl`) and no TOS; the "
     "scripts also expect the RST for a SYN to a bound but not listening socket to carry that socket's TTL/TOS, "
     "and mark it with packetdrill's `!` annotation, which the runner does not implement.",
     lambda p, r: True),
]

def classify(cats, p, r):
    for c in cats:
        if c[-1](p, r):
            return c[0]
    return None

lines = []
w = lines.append
w("# Conformance: packetdrill scripts")
w("")
w("`utcp script` runs packetdrill scripts against a fresh `Stack` on a virtual clock: the script plays the remote")
w("peer (192.0.2.1) and drives the socket calls of the local application (192.168.0.1); under `--ip_version=ipv6`,")
w("packetdrill's IPv6 defaults (remote 2001:db8::1, local fd3d:fa7b:d17d::). See `crates/tools/src/script/`.")
w("")
w("```")
w("utcp script [--profile utcp|freebsd|linux] [--define NAME]... [--json] [--verbose] PATH...")
w("```")
w("")
w("Verdicts: PASS; FAIL with the first mismatch (line, expected and actual segment or call result); UNSUPPORTED")
w("naming the feature (never skipped silently); ERROR for unreadable or unparsable scripts (counted as failed).")
w("The last line is `N passed, M failed, K skipped` (skipped = unsupported).")
w("")
w("## How scripts are run")
w("")
w("- **Numbers** are mapped as packetdrill maps them: the remote side's sequence numbers are used as written (its")
w("  first SYN fixes its ISN); utcp's are shifted so that its ISN appears as the script's SYN or SYN-ACK sequence")
w("  number (normally 0). Inbound ACK numbers and SACK blocks are shifted the same way. Outbound TS values are")
w("  shown relative to the first one, and an inbound `TS ecr` is replaced by the live TS value utcp sent where the")
w("  script wrote that number. TS values are compared only with `--tcp_ts_tick_usecs`, like packetdrill.")
w("- **Outbound segments** are compared field by field (flags, seq, ack, window if given, urgent pointer, payload")
w("  length and bytes, TTL/TOS if given) and options bytewise (`<...>` accepts any). A segment must leave within")
w("  `--tolerance_usecs` (default 4 ms) of its time; `*` accepts any time. A segment utcp sends that no `>` line")
w("  expects is a FAIL once the script moves past its time (plus tolerance); segments sent after the last line are")
w("  ignored, as packetdrill does. (packetdrill itself only notices an unlisted segment when a later `>` line reads")
w("  it, so it also ignores segments sent between the last `>` line and the end; this runner does not.)")
w("- **Timing**: `+t` is relative to when the previous event completed (an outbound segment: when it left), `a~b` is")
w("  a window, `start...end` is a blocking call that must return at `end` while later lines run.")
w("- **System calls** drive the Stack API: socket, bind, listen, accept, connect, read, recv (MSG_PEEK), write, send")
w("  and sendto (MSG_OOB sends urgent data with `Stack::send_urgent`; MSG_NOSIGNAL; other flags UNSUPPORTED), open and")
w("  sendfile, close, shutdown, fcntl (F_GETFL/F_SETFL O_NONBLOCK), getsockopt (SO_RCVBUF, SO_SNDBUF, SO_ERROR,")
w("  SO_KEEPALIVE, TCP_NODELAY, TCP_MAXSEG, TCP_USER_TIMEOUT, TCP_KEEPIDLE/INTVL/CNT), setsockopt (SO_REUSEADDR,")
w("  SO_RCVBUF, SO_SNDBUF, SO_LINGER, SO_KEEPALIVE, TCP_NODELAY, TCP_NOOPT, TCP_USER_TIMEOUT (`Stack::set_user_timeout`),")
w("  IP_MTU_DISCOVER DO/WANT (DF is always set; other values UNSUPPORTED), TCP_KEEPIDLE/INTVL/CNT). A blocking")
w("  socket's call that cannot complete blocks until the stack lets it.")
w("- **`%{ }%`**: only `assert tcpi_state == TCPI_*` and `assert tcpi_options == ...` (from `Stack::status`); any")
w("  other Python makes the script UNSUPPORTED.")
w("- **Shell lines**: `sysctl -w` settings that name engine policy map onto `Config` fields (below); a setting")
w("  without a knob makes the script UNSUPPORTED unless it only restores a value after the last packet or call.")
w("  `sockstat -4|-6 -P tcp [-p PORT] -s [| grep packetdril] | grep -c STATE | grep N` counts the sockets the script")
w("  holds (with `grep packetdril`) or every connection of the stack (`Stack::connections`, embryonic ones")
w("  included); `tcpdrop -s TIME_WAIT` aborts the script's TIME-WAIT sockets. A command may span lines and hold")
w("  several statements (`;`, `&&`, `\\` continuations); `set_sysctls.py /proc/sys/a/b=V ...` and `echo V >")
w("  /proc/sys/a/b` are sysctl writes; `ip route`/`ip link` metrics for the path to the remote host apply (table")
w("  below); `nstat [-a] [-z] [-n] [-s] [-r] [NAME...] [| grep ...]` prints the Linux counters that have an engine")
w("  counter of the same meaning (TcpActiveOpens, TcpRetransSegs, TcpOutRsts, TcpExtDelayedACKs,")
w("  TcpExtTCPChallengeACK) and fails when the last grep")
w("  selects nothing; naming another counter is UNSUPPORTED. Any other command or assertion makes the script")
w("  UNSUPPORTED naming it (after the last packet or call, a command that asserts nothing is only noted).")
w("- **Packets**: `-` stands for no flags; `start:end(len)!` on an outbound segment means an absolute sequence")
w("  number (the RST answering a SYN, <SEQ=0>), not one relative to our ISN. Inbound ICMP error lines run for")
w("  either family (`< icmp unreachable port_unreachable [0:0(0)]`, `... frag_needed mtu 1234 [1:1461(1460)]`,")
w("  `time_exceeded ttl_exceeded_in_transit`, `parameter_problem code_N`, `source_quench`, `redirect`; over IPv6")
w("  RFC 4443's names: `packet_too_big mtu N`, `unreachable no_route|admin_prohibited|address_unreachable|...`,")
w("  `time_exceeded exceeded_hop_limit`, `parameter_problem unknown_next_header`; `crates/tools/src/script/icmp.rs`):")
w("  the packet comes from the remote host and quotes an IP header and the first 8 TCP bytes of a segment we sent,")
w("  its sequence number mapped like an outbound one. Outbound ICMP lines are UNSUPPORTED (\"ICMP\").")
w("- **IP_TTL / IP_TOS** (`setsockopt(IPPROTO_IP, ...)`, values as numbers or `IPTOS_DSCP_*`, `IPTOS_LOWDELAY`...;")
w("  IPV6_UNICAST_HOPS / IPV6_TCLASS and the `(hlim N)` / `(class N)` packet attributes over IPv6):")
w("  per connection (`Stack::set_ttl`/`set_tos`) or per listener (`Stack::set_listener_ttl_tos`, inherited by what it")
w("  accepts, SYN-ACK included); on a socket that is neither yet the value waits for connect/listen, and when it is")
w("  the script's only socket it also becomes `Config::ttl`/`Config::tos`, so the stateless RST answering a SYN to")
w("  its bound port carries it, as FreeBSD's tcp_dropwithreset does with the socket's inpcb. `getsockopt` reads them.")
w("- `#ifdef NAME` blocks: the utcp profile defines `STANDARD`, the freebsd profile `FreeBSD`, the linux profile")
w("  `Linux`; `--define` replaces them.")
w("")
w("## Profiles")
w("")
w("- `utcp`: `Config::default()`.")
w("- `freebsd`: receive buffer 65536 rounded up to a multiple of the MSS once it is known")
w("  (`recv_buffer_round_to_mss`), the whole free space in every window field (`window_full_space`), SYN options")
w("  `mss, nop, wscale, sackOK, TS` (`option_layout = FreeBsd`) with window scale 6 (`window_scale_shift`, from")
w("  kern.ipc.maxsockbuf), send buffer 32768, delayed ACK 40 ms, an ACK for every second segment")
w("  (`ack_every_counts_segments`), the FIN repeated on ACKs while unacknowledged (`resend_fin_with_ack`), RTO 1 s")
w("  initial and 64 s maximum plus 200 ms slop (`rto_slop`), RFC 5961 on (`rfc5961`, `rfc5961_syn`), TIME-WAIT as")
w("  tcp_twcheck handles it (`time_wait_bsd`), ACK fields of segments left of the window processed")
w("  (`ack_old_segments`), classic Nagle (`nagle_minshall = false`), and the handshake bounded by 75 s")
w("  (`connect_timeout`, net.inet.tcp.keepinit) with up to 10 SYN retransmissions (`syn_retries`), and a SYN-ACK to")
w("  a listener dropped without a RST (`listen_drop_syn_ack`), TTL exceeded a hard ICMP error in SYN-SENT")
w("  (`icmp_time_exceeded_hard`) and every hard error reported as ECONNREFUSED (`icmp_hard_refused`, FreeBSD's")
w("  tcp_drop_syn_sent), an ICMPv6 Packet Too Big in SYN-SENT lowering the retransmitted SYN's MSS option")
w("  (`pmtu_syn_mss`, FreeBSD's host cache read by tcp_mssopt); no RACK (`rack = false`, the default stack's loss detection).")
w("- sysctls: `rfc1323` -> `window_scale`, `timestamps`; `sack.enable` -> `sack`, `dsack`; `recvspace`/`sendspace` ->")
w("  buffers; `kern.ipc.maxsockbuf` -> `window_scale_shift`; `delacktime` -> `delayed_ack`; `rexmit_initial` ->")
w("  `initial_rto`; `rexmit_min` -> `min_rto`; `insecure_rst` -> `rfc5961`; `insecure_syn` -> `rfc5961_syn`;")
w("  `keepidle`/`keepintvl`/`keepcnt` -> keepalive timing; `rexmit_slop` -> `rto_slop`; `drop_synfin` ->")
w("  `drop_synfin`; `keepinit` and TCP_KEEPINIT -> `connect_timeout`; `rexmit_drop_options` -> `syn_rexmit_drop_options`")
w("  (MSS only from the third SYN retransmission); `tolerate_missing_ts=0` -> `ts_missing_drop` (RFC 7323 §3.2);")
w("  TCP_NOOPT -> no SYN options; `icmp_may_rst` -> `icmp_may_rst`. Linux names (Google's scripts): `net.ipv4.tcp_timestamps`, `tcp_window_scaling`, `tcp_sack`,")
w("  `tcp_dsack`, `tcp_rfc1337`, `tcp_syn_retries`, `tcp_retries2`, `tcp_challenge_ack_limit`, `tcp_keepalive_*`.")
w("  `--mtu` -> `Config::mtu`. packetdrill's init command (a backquoted line before the first event) is handled")
w("  like a command at time 0.")
w("")
w("")
w("### The linux profile")
w("")
w("`--profile linux` runs the settings that Linux packetdrill harnesses use (tcp_rmem 4096 540000 15728640, tcp_wmem")
w("4096 262144 4194304, timestamps, SACK and D-SACK, tcp_slow_start_after_idle 0, tcp_early_retrans 4, tcp_recovery 1,")
w("tcp_tso_win_divisor 3, tcp_syncookies 1, SYN and SYN-ACK retries 5, F-RTO 2; local 192.168.0.1, remote")
w("192.0.2.1), learned from Documentation/networking/ip-sysctl.rst, tcp(7) and net/ipv4/tcp_input.c/tcp_output.c.")
w("`tools/linux_probe.py` (root; its own network namespace and TUN) checks the live kernel: with tcp_rmem")
w("4096 540000 15728640 the SYN-ACK offers wscale 8 (7 with 4096 87380 6291456) and the first data segments are")
w("acknowledged at once (quick-ACK); with SO_RCVBUF 1000 (window 1152), a 1400-byte segment is accepted whole when")
w("nothing waits to be read.")
w("Each Linux policy is a documented `Config` knob (crates/engine/src/config.rs, \"Linux policies\";")
w("crates/tools/src/script/linux.rs):")
w("")
w("| Config knob | linux profile | Linux setting it mirrors |")
w("|---|---|---|")
for k, v, l in LINUX_KNOBS:
    w(f"| {k} | {v} | {l} |")
w("")
w("Sysctl and route names map onto the knobs:")
w("")
w("| Linux name | engine knob |")
w("|---|---|")
for n, k in LINUX_SYSCTLS:
    w(f"| {n} | {k} |")
w("")
w("The profile runs CUBIC, PRR, RACK and the tail loss probe as Linux does (RACK keeps RFC 6675's")
w("DupThresh/IsLost() marks beside its time-based ones, as Linux's default `tcp_recovery=1` does). Not (yet)")
w("expressible, so the profile differs from Linux there: F-RTO, TSO-sized bursts and Linux's PSH placement per burst (the engine sets PSH on the last")
w("segment of each write), receive-buffer auto-tuning (Linux starts with a smaller advertised window and grows it;")
w("utcp advertises its free buffer). One script per knob lives in `tests/scripts/linux/` (run by `crates/tools/tests/conformance.rs` with")
w("`--profile linux`):")
w("")
for o in lin:
    name = o["script"].split("/")[-1]
    why = f" — line {o['line']}: {o['reason'].splitlines()[0]}" if o["reason"] else ""
    w(f"- `linux/{name}`: {o['verdict']}{why}")
w("")
w(f"## Results (run of {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC)")
w("")
w("FreeBSD tcp-testsuite (freebsd-net/tcp-testsuite, not copied into this repository), `--profile freebsd`:")
w("`utcp script --profile freebsd ../shared/tcp-testsuite/<folder>`; `cargo test -p utcp-tools --test conformance -- --nocapture`")
w("prints the per-script table and the per-folder counts.")
w("IPv4 and IPv6 scripts (`--ip_version=ipv6`: local fd3d:fa7b:d17d::, remote 2001:db8::1) are counted")
w("separately. The gate (`crates/tools/tests/conformance.rs`) requires every script in")
w("`crates/tools/tests/conformance/expected-pass.txt` (IPv4) and `expected-pass-ipv6.txt` (IPv6) to pass, and")
w("each family to pass at least 95% of its scripts.")
w("")
w("| folder | IPv4 scripts | pass | fail | unsupported | IPv6 scripts | pass | fail | unsupported |")
w("|---|---|---|---|---|---|---|---|---|")
tot = collections.Counter()
for f in FOLDERS:
    c = collections.Counter()
    for p, o in fb.items():
        if not p.startswith(f + "/"):
            continue
        fam = "6" if is_v6(p) else "4"
        c["n" + fam] += 1
        c[o["verdict"] + fam] += 1
    tot.update(c)
    cols = [f"{c['n' + x]} | {c['PASS' + x]} | {c['FAIL' + x] + c['ERROR' + x]} | {c['UNSUPPORTED' + x]}" for x in "46"]
    w(f"| {f} | {cols[0]} | {cols[1]} |")
cols = [f"{tot['n' + x]} | {tot['PASS' + x]} | {tot['FAIL' + x] + tot['ERROR' + x]} | {tot['UNSUPPORTED' + x]}" for x in "46"]
w(f"| **total** | {cols[0]} | {cols[1]} |")
w("")
w("utcp's own scripts (`tests/scripts`, `--profile utcp`):")
w("")
OWN_WHY = {
    "active-open-peer-without-wscale.pkt": "**RFC deviation in utcp**: without window scaling, reading sends a "
        "pure ACK whose window does not change (RFC 9293 §3.8.6.2.2 sends a window update only when the window "
        "grows by min(RCV.BUFF/2, MSS)); the window-update test does not clamp the free space to 65535.",
    "simultaneous-open.pkt": "**RFC deviation in utcp**: the peer's SYN-ACK in SYN-RECEIVED should complete a "
        "simultaneous open (RFC 9293 §3.5, Figure 7); utcp treats it as an old segment, ACKs it and stays in "
        "SYN-RECEIVED.",
    "receive-window-full.pkt": "**RFC deviation in utcp**: the duplicate ACK for data sent into a zero window "
        "echoes that segment's TSval; RFC 7323 §5.3 rejects the unacceptable segment (R2) before recording its "
        "timestamp (R3).",
}
for o in own:
    name = o["script"].split("/")[-1]
    why = f" — line {o['line']}: {o['reason'].splitlines()[0]}" if o["reason"] else ""
    extra = f" {OWN_WHY[name]}" if o["verdict"] != "PASS" and name in OWN_WHY else ""
    w(f"- `{name}`: {o['verdict']}{why}{extra}")
w("")

groups = collections.defaultdict(list)
ugroups = collections.defaultdict(list)
unclassified = []
for p, o in sorted(fb.items()):
    r = (o["reason"] or "").splitlines()[0] if o["reason"] else ""
    if o["verdict"] in ("FAIL", "ERROR"):
        k = classify(CATS, p, r)
        (groups[k] if k else unclassified).append((p, o))
    elif o["verdict"] == "UNSUPPORTED":
        ugroups[classify(UCATS, p, r)].append((p, o))

w("## Failing scripts, by cause")
w("")
w("Each cause is classified as an **RFC requirement utcp misses** or **FreeBSD-specific policy** (with the RFC")
w("text that allows utcp's behaviour). Every failing script (IPv4 or IPv6) is listed with its first mismatch.")
w("")
for key, title, cls, expl, _ in CATS:
    items = groups.get(key, [])
    if not items:
        continue
    w(f"### {title} ({len(items)}) — {cls}")
    w("")
    w(expl)
    w("")
    for p, o in items:
        r = o["reason"].splitlines()[0]
        extra = ""
        w(f"- `{p}` line {o['line']}: {r}{extra}")
    w("")
if unclassified:
    w(f"### Not yet classified ({len(unclassified)})")
    w("")
    for p, o in unclassified:
        w(f"- `{p}` line {o['line']}: {o['reason'].splitlines()[0]}")
    w("")
w("## Unsupported scripts (IPv4 and IPv6), by feature")
w("")
for key, title, expl, _ in UCATS:
    items = ugroups.get(key, [])
    if not items:
        continue
    w(f"### {title} ({len(items)})")
    w("")
    w(expl)
    w("")
    for p, o in items:
        w(f"- `{p}` line {o['line']}: {o['reason'].splitlines()[0]}")
    w("")
open(f"{WT}/docs/conformance.md", "w").write("\n".join(lines))
print("unclassified:", len(unclassified), file=sys.stderr)
for p, o in unclassified:
    print(" ", p, o["reason"].splitlines()[0][:150], file=sys.stderr)
