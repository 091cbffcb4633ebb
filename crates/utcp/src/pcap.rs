//! `--pcap`: every packet crossing the TUN, both directions, as a raw-IP pcap file
//! stamped with wall-clock time.

use super::tap::{Direction, Tap};
use crate::device::pcap::PcapWriter;
use crate::time::Instant;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

struct PcapTap {
    w: Option<PcapWriter<BufWriter<File>>>,
    /// Wall-clock microseconds at engine time zero.
    wall_at_zero_us: u64,
    path: String,
}

/// Open `path` for writing as a pcap tap.
pub(crate) fn open(path: &Path) -> io::Result<Box<dyn Tap>> {
    let f =
        File::create(path).map_err(|e| io::Error::new(e.kind(), format!("pcap {}: {e}", path.display())))?;
    let w = PcapWriter::new(BufWriter::with_capacity(1 << 20, f))?;
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0);
    Ok(Box::new(PcapTap { w: Some(w), wall_at_zero_us: wall, path: path.display().to_string() }))
}

impl PcapTap {
    fn fail(&mut self, e: io::Error) {
        // Stop capturing rather than fail the interface; say so once.
        tracing::warn!(path = %self.path, error = %e, "pcap write failed; capture stopped");
        self.w = None;
    }
}

impl Tap for PcapTap {
    fn packet(&mut self, now: Instant, _dir: Direction, packet: &[u8]) {
        let ts = Instant::from_micros(self.wall_at_zero_us + now.micros());
        if let Some(w) = self.w.as_mut()
            && let Err(e) = w.write_packet(ts, packet)
        {
            self.fail(e);
        }
    }

    fn finish(&mut self) {
        if let Some(w) = self.w.as_mut()
            && let Err(e) = w.flush()
        {
            self.fail(e);
        }
    }
}
