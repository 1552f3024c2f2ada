//! What the load generators (lookout-load, lookout-swarm) share: their command line and their
//! percentiles.

use anyhow::{bail, Context};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

pub struct LoadArgs {
    pub server: SocketAddr,
    pub path: String,
    pub viewers: usize,
    pub seconds: u64,
    /// Counting starts after this many seconds (the joins and their replayed GOPs left out).
    pub warmup: u64,
    /// The address media sockets bind (0.0.0.0: every interface, as inside a network namespace).
    pub bind: IpAddr,
    pub token: Option<String>,
}

impl LoadArgs {
    /// `--server ADDR --path NAME --viewers N --seconds T --warmup W --bind IP --token TOKEN`,
    /// each optional; `program` names the file whose comment documents them.
    pub fn parse(program: &str) -> anyhow::Result<Self> {
        let mut args = Self {
            server: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8080),
            path: "demo".into(),
            viewers: 1,
            seconds: 10,
            warmup: 0,
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            token: None,
        };
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it.next().with_context(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--server" => args.server = value.parse().context("--server")?,
                "--path" => args.path = value,
                "--viewers" => args.viewers = value.parse().context("--viewers")?,
                "--seconds" => args.seconds = value.parse().context("--seconds")?,
                "--warmup" => args.warmup = value.parse().context("--warmup")?,
                "--bind" => args.bind = value.parse().context("--bind")?,
                "--token" => args.token = Some(value),
                other => bail!("unknown option {other}; see the comment at the top of {program}"),
            }
        }
        Ok(args)
    }
}

/// The value at quantile `q` of `sorted`.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    (!sorted.is_empty()).then(|| sorted[((sorted.len() - 1) as f64 * q).round() as usize])
}
