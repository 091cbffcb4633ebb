//! IPv4 + TCP parse and emit. OWNED BY THE WIRE HELPER (placeholder).
use super::{DropReason, OptionLayout, TcpFlags, TcpOptions};
use crate::seq::SeqNum;
use std::net::IpAddr;

pub struct TcpSegment<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    pub payload: &'a [u8],
}

#[derive(Clone, Copy, Debug)]
pub struct TcpHeaderOut {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNum,
    pub ack: SeqNum,
    pub flags: TcpFlags,
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
    pub ttl: u8,
    pub ip_id: u16,
}

pub fn parse_ipv4_tcp(_packet: &[u8]) -> Result<TcpSegment<'_>, DropReason> {
    unimplemented!()
}

pub fn emit_ipv4_tcp(
    _buf: &mut [u8],
    _h: &TcpHeaderOut,
    _layout: OptionLayout,
    _payload: &[&[u8]],
) -> Option<usize> {
    unimplemented!()
}
