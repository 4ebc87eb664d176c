//! The SSRF guard: webhooks go to the public internet, never to the
//! daemon's own network.
//!
//! A destination is refused when the address it resolves to is loopback,
//! private, link-local (cloud metadata at 169.254.169.254 included), CGNAT,
//! multicast, broadcast, reserved, unspecified, documentation or benchmark
//! space, IPv6 unique-local, link-local or site-local, or an IPv4-mapped,
//! IPv4-compatible, 6to4 or NAT64 form of any of those. The check runs on
//! the address that is actually dialled: `GuardedResolver` is reqwest's
//! resolver, so a name that resolves to a public address at subscription
//! time and to 127.0.0.1 at delivery time (DNS rebinding) is still refused.
//! URLs with a literal address skip DNS, so `Guard::check_url` checks those
//! before sending, and at subscription time for a clear 422.
//!
//! `ssrf.allow_cidrs` opens chosen ranges; `--dev` opens loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which destinations may be dialled.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Vec<IpNet>,
    allow_loopback: bool,
}

impl Guard {
    pub fn new(allow: Vec<IpNet>, allow_loopback: bool) -> Self {
        Self {
            allow,
            allow_loopback,
        }
    }

    /// `Err` with a sentence naming the address and why it is refused.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), String> {
        let ip = canonical(ip);
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match blocked_reason(ip) {
            None => Ok(()),
            Some("loopback") if self.allow_loopback => Ok(()),
            Some(why) => Err(format!(
                "blocked destination: {ip} is a {why} address (allow it with ssrf.allow_cidrs)"
            )),
        }
    }

    /// Checks a URL whose host is a literal address; names pass (they are
    /// checked when resolved).
    pub fn check_url(&self, url: &Url) -> Result<(), String> {
        match url.host() {
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip)),
            _ => Ok(()),
        }
    }
}

/// An IPv6 address that carries an IPv4 one (mapped, compatible, NAT64,
/// 6to4) is judged as that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let o = v6.octets();
    let tail = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match s {
        // ::ffff:a.b.c.d (mapped)
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail),
        // ::a.b.c.d (compatible, deprecated); not :: or ::1 themselves
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail),
        // 64:ff9b::a.b.c.d (NAT64 well-known prefix)
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        // 2002:abcd:ef01::/16 (6to4 carries the address in segments 1-2)
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        _ => None,
    }
}

/// Why an address is not a public destination, or `None` if it is one.
pub fn blocked_reason(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        (0, _, _) => "\"this network\"",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) => "IETF protocol",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (192, 88, 99) => "6to4 relay",
        (198, 18..=19, _) => "benchmarking",
        _ if ip.is_broadcast() => "broadcast",
        _ if ip.is_multicast() => "multicast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    Some(match s[0] {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        _ if ip.is_multicast() => "multicast",
        0xfc00..=0xfdff => "unique-local",
        0xfe80..=0xfebf => "link-local",
        0xfec0..=0xfeff => "site-local",
        0x0100 if s[1..4] == [0, 0, 0] => "discard-only",
        0x2001 if s[1] == 0x0db8 => "documentation",
        0x2001 if s[1] < 0x0200 => "IETF protocol (Teredo, ORCHID, …)",
        0x3fff if s[1] < 0x1000 => "documentation",
        0x0064 if s[1] == 0xff9b => "NAT64",
        0x0000 => "reserved",
        _ => return None,
    })
}

/// reqwest's resolver: resolves with the system resolver, then keeps only
/// addresses the guard allows. Connections therefore only ever go to an
/// address that passed the check.
pub struct GuardedResolver {
    pub guard: Arc<Guard>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> {
                    format!("cannot resolve {host}: {e}").into()
                })?
                .collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match guard.check_ip(a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refused.get_or_insert(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or_else(|| "no addresses".into());
                return Err(format!("{host} resolves only to refused addresses; {why}").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At least 30 spellings of addresses a webhook must never reach.
    const BLOCKED: &[&str] = &[
        "http://127.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://017700000001/",
        "http://127.0.0.1.:8080/",
        "http://0/",
        "http://0.0.0.0/",
        "http://10.0.0.1/",
        "http://172.16.0.1/",
        "http://172.31.255.255/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0xa9fea9fe/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://239.255.255.250/",
        "http://240.0.0.1/",
        "http://255.255.255.255/",
        "http://192.0.0.8/",
        "http://192.0.2.1/",
        "http://198.51.100.1/",
        "http://203.0.113.1/",
        "http://198.18.0.1/",
        "http://[::1]/",
        "http://[::]/",
        "http://[0:0:0:0:0:0:0:1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[0:0:0:0:0:ffff:127.0.0.1]/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:10.1.2.3]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[fc00::1]/",
        "http://[fd12:3456::1]/",
        "http://[fe80::1]/",
        "http://[fec0::1]/",
        "http://[ff02::1]/",
        "http://[2001:db8::1]/",
        "http://[2001::1]/",
        "http://[100::1]/",
    ];

    #[test]
    fn blocks_every_internal_spelling() {
        let guard = Guard::default();
        for raw in BLOCKED {
            let url = Url::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert!(guard.check_url(&url).is_err(), "{raw} was allowed");
        }
        assert!(BLOCKED.len() >= 30);
    }

    #[test]
    fn allows_public_addresses_and_names() {
        let guard = Guard::default();
        for raw in [
            "https://93.184.215.14/",
            "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
            "https://[::ffff:93.184.215.14]/",
            "https://example.com/webhook",
            "http://100.128.0.1/",
            "http://172.32.0.1/",
        ] {
            let url = Url::parse(raw).unwrap();
            assert!(guard.check_url(&url).is_ok(), "{raw} was refused");
        }
    }

    #[test]
    fn allowlist_and_dev_loopback() {
        let allow: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let guard = Guard::new(allow, false);
        assert!(guard.check_ip("127.0.0.1".parse().unwrap()).is_ok());
        assert!(guard.check_ip("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(guard.check_ip("127.0.0.2".parse().unwrap()).is_err());
        let dev = Guard::new(Vec::new(), true);
        assert!(dev.check_ip("127.0.0.1".parse().unwrap()).is_ok());
        assert!(dev.check_ip("::1".parse().unwrap()).is_ok());
        assert!(
            dev.check_ip("10.0.0.1".parse().unwrap()).is_err(),
            "dev opens loopback only"
        );
        let err = Guard::default()
            .check_ip("169.254.169.254".parse().unwrap())
            .unwrap_err();
        assert!(
            err.contains("link-local") && err.contains("ssrf.allow_cidrs"),
            "{err}"
        );
    }
}
