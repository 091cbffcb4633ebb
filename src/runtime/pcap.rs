//! `--pcap`: every packet crossing the TUN, both directions, as a raw-IP pcap file.

use super::tap::Tap;
use std::io;
use std::path::Path;

/// Open `path` for writing as a pcap tap.
pub(crate) fn open(path: &Path) -> io::Result<Box<dyn Tap>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{}: pcap output is not available yet", path.display()),
    ))
}
