//! The Stack's half of ICMP errors (issue 13; crate::icmp_error, tcb/pmtu.rs): find the
//! connection an error names (RFC 1122 §4.2.3.9) and hand it over; and the per-connection
//! IP_TTL / IP_TOS user calls (RFC 9293 §3.9.1.1 MUST-48).

use super::*;
use crate::icmp_error::{self, IcmpError};

impl Stack {
    /// An IPv4 ICMP error message (type 3, 4, 5, 11 or 12).
    pub(super) fn handle_icmp_error(&mut self, now: Instant, packet: &[u8]) {
        match icmp_error::parse_v4(packet) {
            Ok(e) => self.deliver_icmp_error(now, &e),
            Err(reason) => self.counters.drop(reason),
        }
    }

    /// Act on a parsed ICMP (or, later, ICMPv6) error: it must come to one of our
    /// addresses and name one of our connections; the TCB validates the quoted sequence
    /// number (RFC 5927 §4.1) and decides. Listeners and TIME-WAIT records ignore errors
    /// (nothing of theirs is in flight that an error could concern).
    pub fn deliver_icmp_error(&mut self, now: Instant, e: &IcmpError) {
        if !self.accepts_dst(e.dst) {
            return self.counters.drop(DropReason::NotOurAddress);
        }
        let Some(&idx) = self.conns.get(&e.quad) else {
            return self.counters.drop(DropReason::IcmpNoConnection);
        };
        let r = self.with_tcb(idx, |t, cx| t.on_icmp_error(cx, now, e));
        if let Some(Err(reason)) = r {
            self.counters.drop(reason);
        }
    }

    /// `Config::tos` and, with PMTUD off, a clear DF on a packet sent for no connection
    /// (stateless RSTs, cookie SYN-ACKs).
    pub(super) fn stamp_stateless(&self, packet: &mut [u8]) {
        if self.config.tos != 0 || !self.config.pmtu_discovery {
            icmp_error::restamp_ipv4(packet, self.config.tos, self.config.pmtu_discovery);
        }
    }

    /// IP_TTL for one connection (RFC 9293 MUST-48 asks for the type of service; the TTL
    /// is its sibling, RFC 1122 §3.2.1.7): the IPv4 TTL of everything it sends from now on.
    pub fn set_ttl(&mut self, c: ConnId, ttl: u8) -> io::Result<()> {
        if ttl == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "TTL 0"));
        }
        let idx = self.slot_index(c)?;
        self.with_tcb(idx, |t, _| t.path.ttl = ttl);
        Ok(())
    }

    /// IP_TOS for one connection (RFC 9293 §3.9.1.1 MUST-48: "the TCP MUST allow the
    /// application to set the Diffserv field"): the whole TOS byte, DSCP and ECN bits.
    pub fn set_tos(&mut self, c: ConnId, tos: u8) -> io::Result<()> {
        let idx = self.slot_index(c)?;
        self.with_tcb(idx, |t, _| t.path.tos = tos);
        Ok(())
    }

    /// The connection's TTL and TOS.
    pub fn ttl_tos(&self, c: ConnId) -> io::Result<(u8, u8)> {
        let t = self.tcb(c)?;
        Ok((t.path.ttl, t.path.tos))
    }

    /// IP_TTL / IP_TOS on a listener: the connections it accepts from now on (their
    /// SYN-ACK included) use them. `None` leaves a value as it is.
    pub fn set_listener_ttl_tos(
        &mut self,
        l: ListenerId,
        ttl: Option<u8>,
        tos: Option<u8>,
    ) -> io::Result<()> {
        if ttl == Some(0) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "TTL 0"));
        }
        match self.listeners.get_mut(l.0 as usize).and_then(|l| l.as_mut()) {
            Some(li) => {
                li.ip_ttl_tos = (ttl.or(li.ip_ttl_tos.0), tos.or(li.ip_ttl_tos.1));
                Ok(())
            }
            None => Err(io::Error::new(io::ErrorKind::InvalidInput, "no such listener")),
        }
    }

    /// The last soft ICMP error of a connection (RFC 1122 §4.2.3.9: "make the information
    /// available to the application"; MUST-47), as the close reason a timeout would give.
    pub fn soft_error(&self, c: ConnId) -> io::Result<Option<CloseReason>> {
        Ok(self.tcb(c)?.path.soft_error)
    }

    /// The MSS the path allows this connection (PMTUD, RFC 1191 / RFC 4821), if lowered.
    pub fn path_mss(&self, c: ConnId) -> io::Result<Option<u16>> {
        Ok(self.tcb(c)?.path.mss_cap)
    }
}
