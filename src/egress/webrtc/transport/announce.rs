//! Rewrites the `a=candidate` lines of Lookout's offers and answers to say what viewers must
//! reach behind a 1:1 NAT: each candidate is announced on every configured public address of
//! its family, beside its own address or, with `hide_private_addresses`, instead of it. A
//! viewer's checks sent to the public address arrive, after the NAT, on the private socket the
//! candidate came from.

use std::net::IpAddr;

pub struct Announcer {
    public_ips: Vec<IpAddr>,
    hide_private: bool,
}

impl Announcer {
    pub fn new(public_ips: Vec<IpAddr>, hide_private: bool) -> Self {
        Self { public_ips, hide_private }
    }

    /// The candidates to announce for one local candidate (RFC 8839 §5.1 attribute value,
    /// with or without the `candidate:` prefix).
    fn candidates(&self, candidate: &str) -> Vec<String> {
        let fields: Vec<String> = candidate.split(' ').map(str::to_owned).collect();
        let Some(address) = fields.get(4).and_then(|a| a.parse::<IpAddr>().ok()) else {
            return vec![candidate.to_owned()]; // end of candidates, or nothing we understand
        };
        let mut announced = Vec::new();
        if !self.hide_private {
            announced.push(fields.join(" "));
        }
        for (i, public) in self.public_ips.iter().filter(|ip| ip.is_ipv4() == address.is_ipv4()).enumerate() {
            let mut rewritten = fields.clone();
            rewritten[0] = format!("{}{}", fields[0], i + 1); // a foundation of its own
            rewritten[4] = public.to_string();
            announced.push(rewritten.join(" "));
        }
        announced
    }

    /// An SDP with its `a=candidate` lines rewritten likewise.
    pub fn sdp(&self, sdp: &str) -> String {
        if self.public_ips.is_empty() {
            return sdp.to_owned();
        }
        let mut out = String::with_capacity(sdp.len() + 256);
        for line in sdp.split_inclusive("\r\n") {
            match line.trim_end().strip_prefix("a=") {
                Some(candidate) if candidate.starts_with("candidate:") => {
                    for announced in self.candidates(candidate) {
                        out.push_str("a=");
                        out.push_str(&announced);
                        out.push_str("\r\n");
                    }
                }
                _ => out.push_str(line),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "candidate:1966762133 1 udp 2130706431 10.204.0.1 50702 typ host";

    #[test]
    fn public_address_is_added_beside_or_instead_of_the_private_one() {
        let beside = Announcer::new(vec!["100.64.0.1".parse().unwrap(), "2001:db8::1".parse().unwrap()], false);
        assert_eq!(beside.candidates(HOST), vec![HOST.to_owned(), "candidate:19667621331 1 udp 2130706431 100.64.0.1 50702 typ host".to_owned()]);
        let instead = Announcer::new(vec!["100.64.0.1".parse().unwrap()], true);
        assert_eq!(instead.candidates(HOST), vec!["candidate:19667621331 1 udp 2130706431 100.64.0.1 50702 typ host".to_owned()]);
        let other_family = Announcer::new(vec!["2001:db8::1".parse().unwrap()], true);
        assert!(other_family.candidates(HOST).is_empty(), "no IPv4 public address: the IPv4 candidate is hidden");
        assert_eq!(instead.candidates(""), vec![String::new()], "end of candidates passes through");
    }

    #[test]
    fn sdp_candidate_lines_are_rewritten_and_nothing_else() {
        let sdp = format!("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:0\r\na={HOST}\r\na=end-of-candidates\r\n");
        let out = Announcer::new(vec!["100.64.0.1".parse().unwrap()], true).sdp(&sdp);
        assert_eq!(out, sdp.replace("candidate:1966762133 1 udp 2130706431 10.204.0.1", "candidate:19667621331 1 udp 2130706431 100.64.0.1"));
        assert_eq!(Announcer::new(vec![], false).sdp(&sdp), sdp);
    }
}
