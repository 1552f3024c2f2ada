//! Network namespaces made by a test (needs root): hosts and routers of its own, linked by veth
//! pairs, deleted again when dropped, also when the test fails.

use anyhow::{bail, Context};
use std::process::{Command, Output};

/// Runs a command and fails with its stderr unless it succeeds.
pub fn run(program: &str, args: &[&str]) -> anyhow::Result<Output> {
    let output = Command::new(program).args(args).output().with_context(|| format!("running {program}"))?;
    if !output.status.success() {
        bail!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(output)
}

pub struct Namespace {
    pub name: String,
}

impl Namespace {
    /// A new namespace with its loopback up. `name` should be unique to the test run.
    pub fn new(name: String) -> anyhow::Result<Self> {
        run("ip", &["netns", "add", &name]).context("creating a network namespace (the test needs root)")?;
        let namespace = Self { name };
        namespace.exec("ip", &["link", "set", "lo", "up"])?;
        Ok(namespace)
    }

    /// Runs a command inside the namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> anyhow::Result<Output> {
        let mut all = vec!["netns", "exec", &self.name, program];
        all.extend_from_slice(args);
        run("ip", &all)
    }

    /// A command to spawn inside the namespace (`ip netns exec` becomes the program, so the
    /// child's PID is the program's).
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Links this namespace to `other` with a veth pair and gives each end an address
    /// (`10.0.0.1/24` form).
    pub fn link(&self, local: (&str, &str), other: &Namespace, remote: (&str, &str)) -> anyhow::Result<()> {
        run("ip", &["link", "add", local.0, "netns", &self.name, "type", "veth", "peer", "name", remote.0, "netns", &other.name])?;
        for (namespace, (device, address)) in [(self, local), (other, remote)] {
            namespace.exec("ip", &["addr", "add", address, "dev", device])?;
            namespace.exec("ip", &["link", "set", device, "up"])?;
        }
        Ok(())
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth ends and iptables rules too.
        let _ = run("ip", &["netns", "del", &self.name]);
    }
}
