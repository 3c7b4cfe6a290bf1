//! A node cut off from etcd and the broker: the node runs in a Linux network namespace of its
//! own, joined to the host by a veth pair; etcd and mosquitto listen on the host's end of the
//! link as well as on loopback, and the node reaches them (and the others reach its HTTP) only
//! across it. The partition takes the host's end of the link down — every packet either way is
//! dropped, no connection is reset, as when a switch or a WAN link dies — and the heal brings it
//! back up. Needs root (`ip` from iproute2); the namespace and the link are deleted on drop.

use super::FailoverError;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};

/// A network namespace joined to the host by a veth pair (a /30 of 10.231.0.0/16).
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    host_if: String,
    /// The host's end of the link: etcd and the broker listen here too.
    pub host_ip: Ipv4Addr,
    /// The namespace's end: the node inside listens here.
    pub ns_ip: Ipv4Addr,
}

/// The /30 of a tag (the process id): host end `.1`, namespace end `.2` of its block.
pub fn addresses(tag: u32) -> (Ipv4Addr, Ipv4Addr) {
    // 16,384 blocks of four addresses in 10.231.0.0/16.
    let block = tag % 16_384;
    let base = 0x0ae7_0000u32 + block * 4;
    (Ipv4Addr::from(base + 1), Ipv4Addr::from(base + 2))
}

/// Interface names of a tag, within the kernel's 15 characters.
pub fn interfaces(tag: u32) -> (String, String) {
    (format!("cfh{tag}"), format!("cfn{tag}"))
}

impl Netns {
    /// Creates the namespace `cistern-fo-<tag>` and its link, both ends up, loopback up
    /// inside. Fails (having undone what it did) when not root or when the names are taken.
    pub fn create(tag: u32) -> Result<Self, FailoverError> {
        let (host_if, ns_if) = interfaces(tag);
        let (host_ip, ns_ip) = addresses(tag);
        let name = format!("cistern-fo-{tag}");
        if Path::new("/run/netns").join(&name).exists() {
            return Err(FailoverError::Netns(format!(
                "the namespace {name} exists already (a run that did not clean up: `ip netns del {name}`)"
            )));
        }
        ip(&["netns", "add", &name])?;
        // From here on, drop undoes it.
        let ns = Self {
            name,
            host_if,
            host_ip,
            ns_ip,
        };
        ip(&[
            "link",
            "add",
            &ns.host_if,
            "type",
            "veth",
            "peer",
            "name",
            &ns_if,
        ])?;
        ip(&["link", "set", &ns_if, "netns", &ns.name])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &ns.host_if])?;
        ip(&["link", "set", &ns.host_if, "up"])?;
        ns.inside(&["addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if])?;
        ns.inside(&["link", "set", &ns_if, "up"])?;
        ns.inside(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip ARGS` inside the namespace.
    fn inside(&self, args: &[&str]) -> Result<(), FailoverError> {
        let mut all = vec!["netns", "exec", &self.name, "ip"];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// A command running `program` inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// Cuts the namespace off: the host's end of the link goes down.
    pub fn cut(&self) -> Result<(), FailoverError> {
        ip(&["link", "set", &self.host_if, "down"])
    }

    /// Heals the partition.
    pub fn heal(&self) -> Result<(), FailoverError> {
        ip(&["link", "set", &self.host_if, "up"])
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting either end of a veth pair deletes both; the namespace goes once its last
        // process has (the node inside is stopped before).
        let _ = quiet(&["link", "del", &self.host_if]);
        let _ = quiet(&["netns", "del", &self.name]);
    }
}

fn quiet(args: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
}

/// `ip ARGS`, failing with its stderr.
fn ip(args: &[&str]) -> Result<(), FailoverError> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| FailoverError::Netns(format!("cannot run `ip` (iproute2): {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(FailoverError::Netns(format!(
            "`ip {}` failed ({}): {} (network namespaces need root)",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a TCP connection from inside the namespace to `addr` succeeds within 2 s.
    fn reaches(ns: &Netns, addr: std::net::SocketAddr) -> bool {
        let script = format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port());
        let mut c = ns.command(Path::new("/usr/bin/timeout"));
        c.args(["2", "bash", "-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c.status().unwrap().success()
    }

    /// A real namespace (needs root, as `cistern bench failover --scenario partition` does):
    /// inside, the host's end of the link is reachable; cut, it is not; healed, it is again;
    /// dropped, nothing is left.
    #[test]
    fn a_namespace_reaches_the_host_until_cut_and_again_once_healed() {
        // A tag of its own (the benchmark tags by its pid, which rarely lands up here).
        let tag = 16_000 + std::process::id() % 300;
        let ns = Netns::create(tag).unwrap();
        let listener = std::net::TcpListener::bind((ns.host_ip, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(reaches(&ns, addr), "the namespace cannot reach {addr}");
        ns.cut().unwrap();
        assert!(!reaches(&ns, addr), "{addr} is reachable across a cut link");
        ns.heal().unwrap();
        let back = (0..50).any(|_| {
            let ok = reaches(&ns, addr);
            if !ok {
                std::thread::park_timeout(std::time::Duration::from_millis(100));
            }
            ok
        });
        assert!(back, "{addr} is not reachable after the heal");
        let name = ns.name.clone();
        drop(ns);
        assert!(!Path::new("/run/netns").join(&name).exists());
        let (host_if, _) = interfaces(tag);
        assert!(!Path::new("/sys/class/net").join(host_if).exists());
    }

    #[test]
    fn each_tag_has_its_own_block_and_short_interface_names() {
        assert_eq!(
            addresses(0),
            ("10.231.0.1".parse().unwrap(), "10.231.0.2".parse().unwrap())
        );
        assert_eq!(
            addresses(70),
            (
                "10.231.1.25".parse().unwrap(),
                "10.231.1.26".parse().unwrap()
            )
        );
        let (h, n) = addresses(16_383);
        assert_eq!(
            (h, n),
            (
                "10.231.255.253".parse().unwrap(),
                "10.231.255.254".parse().unwrap()
            )
        );
        // Pids go up to 4,194,304: the names stay within 15 characters.
        let (h, n) = interfaces(4_194_304);
        assert!(h.len() <= 15 && n.len() <= 15 && h != n);
    }
}
