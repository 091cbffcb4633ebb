//! The Stack: Quad -> TCB demux. (API surface; the implementation is landing.)
#![allow(unused_variables)]

use super::{Config, ConnId, Counters, Event, Keepalive, ListenerId, State, Status};
use crate::time::Instant;
use std::io;
use std::net::{IpAddr, Shutdown, SocketAddr};

pub struct Stack {
    config: Config,
    counters: Counters,
}

impl Stack {
    pub fn new(config: Config) -> Stack {
        Stack {
            config,
            counters: Counters::default(),
        }
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    pub fn add_local_addr(&mut self, ip: IpAddr) {
        todo!()
    }
    pub fn handle_packet(&mut self, now: Instant, packet: &[u8]) {
        todo!()
    }
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        todo!()
    }
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        todo!()
    }
    pub fn handle_timeout(&mut self, now: Instant) {
        todo!()
    }
    pub fn poll_event(&mut self) -> Option<Event> {
        todo!()
    }
    pub fn listen(&mut self, local: SocketAddr, backlog: usize) -> io::Result<ListenerId> {
        todo!()
    }
    pub fn accept(&mut self, l: ListenerId) -> io::Result<(ConnId, SocketAddr)> {
        todo!()
    }
    pub fn close_listener(&mut self, now: Instant, l: ListenerId) {
        todo!()
    }
    pub fn connect(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> io::Result<ConnId> {
        todo!()
    }
    pub fn send(&mut self, now: Instant, c: ConnId, data: &[u8]) -> io::Result<usize> {
        todo!()
    }
    pub fn recv(&mut self, now: Instant, c: ConnId, buf: &mut [u8]) -> io::Result<usize> {
        todo!()
    }
    pub fn peek(&self, c: ConnId, buf: &mut [u8]) -> io::Result<usize> {
        todo!()
    }
    pub fn shutdown(&mut self, now: Instant, c: ConnId, how: Shutdown) -> io::Result<()> {
        todo!()
    }
    pub fn close(&mut self, now: Instant, c: ConnId) {
        todo!()
    }
    pub fn abort(&mut self, now: Instant, c: ConnId) {
        todo!()
    }
    pub fn status(&self, c: ConnId) -> io::Result<Status> {
        todo!()
    }
    pub fn state(&self, c: ConnId) -> Option<State> {
        todo!()
    }
    pub fn set_nodelay(&mut self, c: ConnId, on: bool) -> io::Result<()> {
        todo!()
    }
    pub fn set_keepalive(&mut self, c: ConnId, ka: Option<Keepalive>) -> io::Result<()> {
        todo!()
    }
    /// Change buffer sizes (SO_RCVBUF / SO_SNDBUF); before the handshake it also sets the window scale.
    pub fn set_buffer_sizes(
        &mut self,
        c: ConnId,
        recv: Option<usize>,
        send: Option<usize>,
    ) -> io::Result<()> {
        todo!()
    }
    pub fn take_error(&mut self, c: ConnId) -> Option<io::Error> {
        todo!()
    }
    pub fn can_recv(&self, c: ConnId) -> bool {
        todo!()
    }
    pub fn can_send(&self, c: ConnId) -> bool {
        todo!()
    }
    pub fn local_addr(&self, c: ConnId) -> io::Result<SocketAddr> {
        todo!()
    }
    pub fn peer_addr(&self, c: ConnId) -> io::Result<SocketAddr> {
        todo!()
    }
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
}
