//! Private network namespaces for tests, the demo and the bench.
//!
//! Every TUN and every packet a test, demo or bench makes lives in a namespace created here.
//! A [`NetNs`] is created with `ip netns add` (so tools like `ip netns exec` and tshark can
//! join it) and deleted on drop if this process created it. Threads join it with
//! [`NetNs::enter`], which calls `setns(CLONE_NEWNET)` on the calling thread only.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::process::Command;

#[derive(Debug)]
pub struct NetNs {
    name: String,
    file: File,
    owned: bool,
}

impl NetNs {
    /// Create `name` (failing if it exists) and bring its loopback up.
    pub fn create(name: &str) -> io::Result<NetNs> {
        run_ip(&["netns", "add", name])?;
        let ns = NetNs::open(name, true)?;
        ns.exec("ip", &["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// A process-unique name with the given prefix, e.g. `utcp-test-1234-7`.
    pub fn unique_name(prefix: &str) -> String {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
    }

    /// Use `name` if it exists; otherwise create it (and delete it on drop).
    pub fn open_or_create(name: &str) -> io::Result<NetNs> {
        match NetNs::open(name, false) {
            Ok(ns) => Ok(ns),
            Err(_) => NetNs::create(name),
        }
    }

    fn open(name: &str, owned: bool) -> io::Result<NetNs> {
        let file = File::open(format!("/var/run/netns/{name}"))?;
        Ok(NetNs { name: name.to_string(), file, owned })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Move the calling thread into this namespace. Use it on a dedicated thread: the
    /// thread never returns to the namespace it came from.
    pub fn enter(&self) -> io::Result<()> {
        // SAFETY: setns on a valid namespace fd affects only the calling thread.
        let rc = unsafe { libc::setns(self.file.as_raw_fd(), libc::CLONE_NEWNET) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Run a program inside the namespace (`ip netns exec`), returning its stdout.
    pub fn exec(&self, prog: &str, args: &[&str]) -> io::Result<String> {
        let out = Command::new("ip").args(["netns", "exec", &self.name, prog]).args(args).output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "ip netns exec {} {prog} {}: {}",
                self.name,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Spawn a thread that runs `f` inside this namespace.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<std::thread::JoinHandle<io::Result<T>>> {
        let fd = self.file.try_clone()?;
        Ok(std::thread::spawn(move || {
            // SAFETY: as in `enter`.
            let rc = unsafe { libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET) };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(f())
        }))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if self.owned {
            let _ = run_ip(&["netns", "delete", &self.name]);
        }
    }
}

fn run_ip(args: &[&str]) -> io::Result<()> {
    let out = Command::new("ip").args(args).output().map_err(|e| {
        io::Error::new(e.kind(), format!("running `ip {}`: {e} (is iproute2 installed?)", args.join(" ")))
    })?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// True when running as root (uid 0); TUN and namespace tests need it.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// For tests that need root: returns false (after a loud message) when they should skip.
/// Under `CI=true` a missing privilege is a failure, not a skip.
pub fn require_root(test: &str) -> bool {
    if is_root() && std::path::Path::new("/dev/net/tun").exists() {
        return true;
    }
    let msg = format!("{test}: needs root and /dev/net/tun (CAP_NET_ADMIN)");
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("{msg}; CI=true so this is a failure, not a skip");
    }
    eprintln!("\n*** SKIPPED *** {msg}\n");
    false
}
