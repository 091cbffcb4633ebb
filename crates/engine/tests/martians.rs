//! Martians dropped and counted by reason (RFC 1122 §3.2.1.3, RFC 1812 §5.3.7).
mod common;
use common::*;

/// LAND: a SYN whose source is our own address (and port) gets no SYN-ACK: answering it
/// would send the stack's packets to itself, and a forwarding host loops them.
#[test]
fn land_syn_is_dropped() {
    let mut h = H::new(base_config());
    h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0).from(local_addr()));
    h.send(Seg::new(SYN, PEER_ISS, 0).from(SocketAddr::new(IpAddr::V4(LOCAL_IP), 1234)));
    h.send(Seg::new(ACK, PEER_ISS, 5).from(SocketAddr::new(IpAddr::V4(LOCAL_IP), 1234)));
    h.expect_nothing();
    assert_eq!(h.stack.connection_count(), 0);
    assert_eq!(h.stack.counters().dropped(DropReason::Land), 3);
    // An honest SYN still works.
    h.send(Seg::new(SYN, PEER_ISS, 0));
    assert_eq!(h.recv().unwrap().flags, SYN | ACK);
}

/// With our prefix known (`Config::local_prefix_len`), the subnet-directed broadcast
/// address is no valid source or destination; without it, it is an ordinary address.
#[test]
fn subnet_broadcast_source_and_destination_are_dropped() {
    let mut h = H::new(base_config().with_local_prefix_len(Some(24)));
    h.listen();
    let bcast = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 255));
    h.send(Seg::new(SYN, PEER_ISS, 0).from(SocketAddr::new(bcast, REMOTE_PORT)));
    h.expect_nothing();
    assert_eq!(h.stack.counters().dropped(DropReason::MartianSubnetBroadcast), 1);

    let mut h = H::new(base_config());
    h.listen();
    h.send(Seg::new(SYN, PEER_ISS, 0).from(SocketAddr::new(bcast, REMOTE_PORT)));
    assert_eq!(h.recv().unwrap().flags, SYN | ACK, "no prefix configured: 10.0.0.255 is a host");
}
