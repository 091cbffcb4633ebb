//! Private network namespaces for tests, the demo and the bench.
//!
//! Every TUN and every packet a test, demo or bench makes lives in a namespace created here.
//! A [`NetNs`] is created with `ip netns add` (so tools like `ip netns exec` and tshark can
//! join it) and deleted on drop if this process created it. Threads join it with
//! [`NetNs::enter`], which calls `setns(CLONE_NEWNET)` on the calling thread only.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
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
        setns_net(&self.file)
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
            setns_net(&fd)?;
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

/// `setns(fd, CLONE_NEWNET)`: move the calling thread (only) into the namespace `fd` names.
pub fn setns_net(fd: impl AsFd) -> io::Result<()> {
    use rustix::thread::{LinkNameSpaceType, move_into_link_name_space};
    Ok(move_into_link_name_space(fd.as_fd(), Some(LinkNameSpaceType::Network))?)
}

/// True when running as root (uid 0); TUN and namespace tests need it.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when the process can make TUN devices and namespaces: root and `/dev/net/tun`.
pub fn can_tun() -> bool {
    is_root() && std::path::Path::new("/dev/net/tun").exists()
}

/// For tests that need root and TUN. Such tests are `#[ignore]`d unless the build script
/// set `cfg(utcp_root_tests)` (CI=true, or built as root with /dev/net/tun), so reaching
/// this without the privilege means CI lacks it, or the test was forced with
/// `--include-ignored`: either way it fails here rather than passing without running.
pub fn assert_root(test: &str) {
    assert!(
        can_tun(),
        "{test}: needs root and /dev/net/tun (CAP_NET_ADMIN); refusing to pass without running"
    );
}
