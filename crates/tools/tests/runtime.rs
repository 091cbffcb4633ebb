//! Who does the work: these tests watch the runtime's own counters ([`LinkStats`]) while
//! the Linux kernel, in a namespace each test creates, talks to the stack over the TUN.

mod common;
use common::{echo_exchanges, env_at, kernel_connect_nodelay};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;
use utcp::{Interface, TcpListener};
use utcp_tools::netns::{NetNs, assert_root};

const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 1);
const STACK: Ipv4Addr = Ipv4Addr::new(10, 79, 0, 2);
const STEP: Duration = Duration::from_secs(20);

fn setup(tag: &str) -> (Interface, NetNs) {
    let e = env_at(tag.trim_start_matches("utcp-"), "rt0", STACK, KERNEL, |_| {});
    (e.iface, e.ns)
}

fn kernel_connect(port: u16) -> TcpStream {
    kernel_connect_nodelay(SocketAddr::from((STACK, port)), STEP)
}

/// 1-byte request/response: the application thread blocked in `read` polls the TUN
/// itself, so each request wakes that thread and the driver thread sleeps.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn request_response_is_served_by_the_blocked_application_thread() {
    assert_root("request_response_is_served_by_the_blocked_application_thread");
    const N: u64 = 2000;
    let (iface, ns) = setup("utcp-rtlead");
    let (before, after) = echo_exchanges(&iface, &ns, STACK, 7001, N, Duration::ZERO);
    let led = after.leader_wakeups - before.leader_wakeups;
    // A slow application thread may find a request already queued and read it inline.
    let pumped = after.pumps - before.pumps;
    let driver = after.driver_wakeups - before.driver_wakeups;
    // With the default adaptive busy polling (`BusyPoll::Adaptive`), the waiting thread
    // reads most requests while polling, without a wake-up.
    let polled = after.busy_poll_hits - before.busy_poll_hits;
    eprintln!(
        "{N} transactions: {led} leader wake-ups, {polled} busy-poll hits, {pumped} pumps, {driver} driver wake-ups"
    );
    // Every request is read by the application thread that waits for it.
    assert!(led + polled + pumped >= N * 9 / 10, "leader read {} of {N} requests", led + polled + pumped);
    // The driver only checks on the parked TUN now and then, and fires timers.
    assert!(driver <= N / 4, "driver woke {driver} times for {N} requests");
}

/// After the leader returns to its application and stays away, the driver takes the TUN
/// back and processes arriving data, with no socket call from the application.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn a_parked_tun_goes_back_to_the_driver() {
    assert_root("a_parked_tun_goes_back_to_the_driver");
    let (iface, ns) = setup("utcp-rtpark");
    let l = TcpListener::bind(&iface, (STACK, 7002)).unwrap();
    let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let client = ns
        .spawn(move || {
            let mut s = kernel_connect(7002);
            first_rx.recv_timeout(STEP).unwrap();
            s.write_all(b"x").unwrap();
            go_rx.recv_timeout(STEP).unwrap();
            s.write_all(&[5u8; 1000]).unwrap();
            // Hold the connection until the server has looked.
            let mut b = [0u8; 1];
            let _ = s.read(&mut b);
        })
        .unwrap();
    let (s, _) = l.accept().unwrap();
    // The byte is sent only once this thread is blocked in `read`, so this thread reads
    // it from the TUN itself and parks the TUN on its way back.
    let nudge = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        first_tx.send(()).unwrap();
    });
    let mut b = [0u8; 1];
    (&s).read_exact(&mut b).unwrap();
    nudge.join().unwrap();
    let before = iface.link_stats();
    // The application now does something else; the kernel sends meanwhile.
    go_tx.send(()).unwrap();
    let mut seen = 0;
    for _ in 0..200 {
        std::thread::sleep(Duration::from_millis(10));
        let mut peek = [0u8; 2000];
        seen = s.peek(&mut peek).unwrap_or(0);
        if seen == 1000 {
            break;
        }
    }
    assert_eq!(seen, 1000, "data arriving while the application is away is processed");
    // Only the driver can have read it, after taking back the TUN the reader parked.
    let after = iface.link_stats();
    assert!(after.handbacks >= 1, "{after:?}");
    assert!(after.driver_wakeups > before.driver_wakeups, "{before:?} -> {after:?}");
    (&s).write_all(b"y").unwrap();
    client.join().expect("client panicked").expect("setns");
}

/// Without flow steering, a thread leading on an idle connection hands leadership over
/// to the thread whose connection carries the traffic, which then serves it with one
/// wake-up per request.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn leadership_follows_the_traffic() {
    assert_root("leadership_follows_the_traffic");
    let (before, after) = idle_reader_and_busy_thread("utcp-rtfollow", 0);
    assert!(!after.steering && after.steer_queues == 0, "steer_queues = 0 turns steering off");
    let leads = after.leads - before.leads;
    let led = after.leader_wakeups - before.leader_wakeups;
    // Had the idle reader kept leading, it would have led once, for the whole run, and
    // every request would have cost it a wake-up plus one of the busy thread.
    assert!(leads >= N_BUSY / 2, "busy thread led {leads} times: {before:?} -> {after:?}");
    assert!(led >= N_BUSY / 2, "{before:?} -> {after:?}");
}

/// With flow steering on (the default), the busy thread still serves with one wake-up of
/// its own per request: either it got a queue (its first wait found the idle reader
/// leading) and the kernel's requests wake it there, or (queues are opened only once
/// threads crowd, so its first wait may find none) leadership came to it as without
/// steering. Neither the idle reader nor the driver is woken per request.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn a_busy_thread_is_woken_on_its_own_queue_or_leads() {
    assert_root("a_busy_thread_is_woken_on_its_own_queue_or_leads");
    let (before, after) = idle_reader_and_busy_thread("utcp-rtsteer", 64);
    let steered = after.steered_wakeups - before.steered_wakeups;
    let led = after.leader_wakeups - before.leader_wakeups + after.busy_poll_hits - before.busy_poll_hits;
    assert!(after.steering, "{after:?}");
    assert!(steered + led >= N_BUSY / 2, "{before:?} -> {after:?}");
}

const N_BUSY: u64 = 500;

/// An idle reader blocks first, then a busy thread serves `N_BUSY` request/responses
/// (interface with `steer_queues`). Checks that the driver woke at most for half the
/// requests; returns the link counters around the busy phase.
fn idle_reader_and_busy_thread(tag: &str, steer_queues: u16) -> (utcp::LinkStats, utcp::LinkStats) {
    const N: u64 = N_BUSY;
    let e = env_at(tag.trim_start_matches("utcp-"), "rt0", STACK, KERNEL, |c| c.steer_queues = steer_queues);
    let (iface, ns) = (e.iface, e.ns);
    let l = TcpListener::bind(&iface, (STACK, 7003)).unwrap();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let client = ns
        .spawn(move || {
            let mut idle = kernel_connect(7003);
            let mut busy = kernel_connect(7003);
            let mut b = [0u8; 1];
            for i in 0..N {
                busy.write_all(&[i as u8]).unwrap();
                busy.read_exact(&mut b).unwrap();
            }
            release_rx.recv_timeout(STEP).unwrap();
            idle.write_all(b"z").unwrap();
        })
        .unwrap();
    let (idle, _) = l.accept().unwrap();
    let (mut busy, _) = l.accept().unwrap();
    busy.set_nodelay(true).unwrap();
    let idle_reader = std::thread::spawn(move || {
        let mut b = [0u8; 1];
        (&idle).read_exact(&mut b).map(|()| b[0])
    });
    // Let the idle reader block (and lead) first.
    std::thread::sleep(Duration::from_millis(50));
    let before = iface.link_stats();
    let mut b = [0u8; 1];
    for _ in 0..N {
        busy.read_exact(&mut b).unwrap();
        busy.write_all(&b).unwrap();
    }
    let after = iface.link_stats();
    release_tx.send(()).unwrap();
    assert_eq!(idle_reader.join().unwrap().unwrap(), b'z');
    client.join().expect("client panicked").expect("setns");
    let leads = after.leads - before.leads;
    let led = after.leader_wakeups - before.leader_wakeups;
    let steered = after.steered_wakeups - before.steered_wakeups;
    let driver = after.driver_wakeups - before.driver_wakeups;
    eprintln!(
        "{N} transactions: {leads} leads, {led} leader wake-ups, {steered} steered wake-ups, \
         {driver} driver wake-ups"
    );
    // With the idle reader waiting too, a released TUN goes back to the driver, which
    // wakes only when a request races the busy thread's return to `read`.
    assert!(driver <= N / 2, "{before:?} -> {after:?}");
    (before, after)
}

/// The kernel, inside a private namespace, sends a TCP SYN to an address behind the
/// TUN; we read it raw: IPv4, protocol 6, right addresses and port.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn kernel_syn_arrives_as_raw_ipv4() {
    assert_root("kernel_syn_arrives_as_raw_ipv4");
    let ns = NetNs::create(&NetNs::unique_name("utcp-tun")).expect("netns");
    let h = ns
        .spawn(|| -> std::io::Result<(Vec<u8>, u16)> {
            let tun = utcp::device::tun::Tun::open(&utcp::device::tun::TunConfig {
                name: "utcp0".into(),
                peer: Ipv4Addr::new(10, 77, 0, 1),
                prefix: 24,
                mtu: 1400,
                peer6: None,
                multi_queue: false,
            })?;
            // Nonblocking: nothing queued yet (or only IPv6 chatter).
            let mut buf = vec![0u8; utcp::device::tun::MAX_PACKET];
            let addr = std::net::SocketAddr::from(([10, 77, 0, 2], 4242));
            let c = std::thread::scope(|s| {
                // A new thread starts in the process's namespace: move it into ours.
                let ns_fd = std::fs::File::open("/proc/thread-self/ns/net")?;
                let j = s.spawn(move || {
                    utcp_tools::netns::setns_net(&ns_fd).expect("setns");
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(600))
                });
                let start = std::time::Instant::now();
                let mut syn = None;
                while start.elapsed() < Duration::from_secs(5) {
                    match tun.recv(&mut buf) {
                        Ok(n) if n >= 20 && buf[0] >> 4 == 4 && buf[9] == 6 => {
                            syn = Some(buf[..n].to_vec());
                            break;
                        }
                        Ok(_) => continue, // IPv6 or other chatter
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        Err(e) => return Err(e),
                    }
                }
                let _ = j.join();
                syn.ok_or_else(|| std::io::Error::other("no SYN seen"))
            })?;
            Ok((c, tun.mtu()?))
        })
        .expect("spawn");
    let (syn, mtu) = h.join().expect("join").expect("ns").expect("tun");
    assert_eq!(syn[0] >> 4, 4, "IPv4");
    assert_eq!(&syn[12..16], &[10, 77, 0, 1], "source is the kernel side");
    assert_eq!(&syn[16..20], &[10, 77, 0, 2], "destination behind the TUN");
    let ihl = (syn[0] & 0xf) as usize * 4;
    assert_eq!(u16::from_be_bytes([syn[ihl + 2], syn[ihl + 3]]), 4242);
    assert_eq!(syn[ihl + 13] & 0x02, 0x02, "SYN flag");
    assert_eq!(mtu, 1400);
}

#[path = "../../utcp/examples/echo_server.rs"]
mod echo_server;

/// The README's library example (`crates/utcp/examples/echo_server.rs`), bounded.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn echo_server_example_self_test() {
    assert_root("echo_server_example_self_test");
    echo_server::self_test().expect("echo_server self-test");
}

/// A minimal `tracing` subscriber that remembers span names and event messages.
mod capture {
    use std::sync::Mutex;
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    pub static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

    struct Capture;

    struct Message<'a>(&'a mut String);
    impl tracing::field::Visit for Message<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                *self.0 = format!("{value:?}");
            }
        }
    }

    impl Subscriber for Capture {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, a: &Attributes<'_>) -> Id {
            SEEN.lock().unwrap().push(format!("span {}", a.metadata().name()));
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, e: &Event<'_>) {
            let mut m = String::new();
            e.record(&mut Message(&mut m));
            SEEN.lock().unwrap().push(format!("event {m}"));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    pub fn install() {
        let _ = tracing::subscriber::set_global_default(Capture);
    }
}

/// Logging is through `tracing`: with a subscriber installed, the interface and each
/// connection get a span, and opening and closing are events.
#[test]
#[cfg_attr(not(utcp_root_tests), ignore = "needs root + /dev/net/tun: run as root (CI does)")]
fn tracing_spans_per_interface_and_connection() {
    assert_root("tracing_spans_per_interface_and_connection");
    capture::install();
    let (iface, _ns) = setup("utcp-trace");
    let l = TcpListener::bind(&iface, (STACK, 9)).unwrap();
    let ns_fd = std::fs::File::open(format!("/var/run/netns/{}", _ns.name())).unwrap();
    let client = std::thread::spawn(move || {
        utcp_tools::netns::setns_net(&ns_fd).expect("setns");
        let mut c = kernel_connect(9);
        c.write_all(b"x").unwrap();
    });
    let (mut s, _) = l.accept().unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).unwrap();
    client.join().unwrap();
    drop(s);
    iface.wait_quiet(Duration::from_millis(50), Duration::from_secs(2));
    drop(iface);
    let seen = capture::SEEN.lock().unwrap().clone();
    for want in ["span utcp", "span tcp", "event interface up", "event accepted", "event close"] {
        assert!(seen.iter().any(|s| s == want), "no {want:?} in {seen:?}");
    }
}
