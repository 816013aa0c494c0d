//! Setting the run up: every client registered through its own netsim path, the
//! friendships around a ring and within each group, and the groups made.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use uchat_netsim::Topology;
use uchat_netsim::model::profile::profile;
use uchat_peer::{Client, ClientOptions};
use uchat_tests::TestRelay;
use uchat_wire::{GroupId, UserName};

use crate::Args;
use crate::shared::PASSWORD;

/// The clients, registered and befriended, and who talks to whom.
pub(crate) struct Setup {
    /// The clients, open and caught up.
    pub(crate) clients: Vec<Client>,
    /// Each client's profile directory and its netsim path's address.
    pub(crate) options: Vec<ClientOptions>,
    /// Each client's 1:1 partners.
    pub(crate) partners: Vec<Vec<usize>>,
    /// The groups and their members (the first is the owner).
    pub(crate) groups: Vec<(GroupId, Vec<usize>)>,
}

/// Registers the clients through their paths, makes the friendships and groups.
pub(crate) async fn set_up(
    args: &Args,
    relay: &TestRelay,
    topology: &mut Topology,
    scratch: &Path,
) -> Result<Setup> {
    let n = args.clients;
    let shape =
        profile(&args.profile).with_context(|| format!("no netsim profile {:?}", args.profile))?;
    let upstream = relay.addr.parse().context("relay address")?;
    let mut options = Vec::with_capacity(n);
    for i in 0..n {
        // Each client on its own impaired line, as real users are.
        let path = topology.path_to(upstream, &shape).await?;
        options.push(ClientOptions {
            home: scratch.join(format!("home{i}")),
            relay: Some(path.to_string()),
            relay_fingerprint: Some(relay.fingerprint.parse().context("fingerprint")?),
        });
    }
    let mut registering = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(4));
    for (i, o) in options.iter().enumerate() {
        let (o, permits) = (o.clone(), permits.clone());
        registering.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            let name = UserName::parse(&format!("soak{i}"))?;
            let client = Client::register(o, name, PASSWORD).await?;
            Ok::<_, anyhow::Error>((i, client))
        });
    }
    let mut clients: Vec<Option<Client>> = (0..n).map(|_| None).collect();
    while let Some(done) = registering.join_next().await {
        let (i, client) = done??;
        clients[i] = Some(client);
    }
    let clients: Vec<Arc<Client>> = clients
        .into_iter()
        .map(|c| c.map(Arc::new).context("a client did not register"))
        .collect::<Result<_>>()?;
    let partners = ring_partners(n);
    let groups: Vec<(usize, Vec<usize>)> = group_members(n, args.groups, args.group_size)
        .into_iter()
        .enumerate()
        .collect();
    let edges = friendships(&partners, groups.iter().map(|(_, m)| m.as_slice()));
    eprintln!("making {} friendships…", edges.len());
    let mut befriending = tokio::task::JoinSet::new();
    let permits = Arc::new(tokio::sync::Semaphore::new(8));
    for (a, b) in edges {
        let (ca, cb, permits) = (clients[a].clone(), clients[b].clone(), permits.clone());
        befriending.spawn(async move {
            let _permit = permits.acquire_owned().await?;
            if !ca.social().add_friend(cb.me(), "soak").await? {
                cb.social().accept_friend(ca.me()).await?;
            }
            Ok::<_, anyhow::Error>(())
        });
    }
    while let Some(done) = befriending.join_next().await {
        done??;
    }
    let mut made = Vec::new();
    for (g, members) in &groups {
        let (owner, rest) = members.split_first().context("an empty group")?;
        let names: Vec<UserName> = rest.iter().map(|&m| clients[m].me().clone()).collect();
        let info = clients[*owner]
            .groups()
            .create(&format!("soak group {g}"), &names)
            .await?;
        made.push((info.id, members.clone()));
    }
    for client in &clients {
        client.catch_up(Duration::from_secs(60)).await?;
    }
    let clients = clients
        .into_iter()
        .map(|c| Arc::try_unwrap(c).map_err(|_| anyhow!("a client is still shared after setup")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Setup {
        clients,
        options,
        partners,
        groups: made,
    })
}

/// Each client's 1:1 partners: the next two and the previous two around a ring of `n`.
fn ring_partners(n: usize) -> Vec<Vec<usize>> {
    (0..n)
        .map(|i| {
            let mut p: Vec<usize> = [1, 2, n - 1, n - 2]
                .iter()
                .map(|d| (i + d) % n)
                .filter(|&j| j != i)
                .collect();
            p.sort_unstable();
            p.dedup();
            p
        })
        .collect()
}

/// `groups` groups of `size` consecutive clients, spread evenly around the ring of `n`
/// (the first member is the owner).
fn group_members(n: usize, groups: usize, size: usize) -> Vec<Vec<usize>> {
    let stride = (n / groups.max(1)).max(1);
    (0..groups)
        .map(|g| (0..size).map(|k| (g * stride + k) % n).collect())
        .collect()
}

/// The friendships to make, each pair once (lower index first): every 1:1 pair, and
/// every two members of a group.
fn friendships<'a>(
    partners: &[Vec<usize>],
    groups: impl Iterator<Item = &'a [usize]>,
) -> BTreeSet<(usize, usize)> {
    let mut edges = BTreeSet::new();
    for (i, p) in partners.iter().enumerate() {
        for &j in p {
            edges.insert((i.min(j), i.max(j)));
        }
    }
    for members in groups {
        for &a in members {
            for &b in members {
                if a < b {
                    edges.insert((a, b));
                }
            }
        }
    }
    edges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partners_are_the_ring_neighbours_and_mutual() {
        let partners = ring_partners(30);
        assert_eq!(partners[0], vec![1, 2, 28, 29]);
        for (i, p) in partners.iter().enumerate() {
            assert_eq!(p.len(), 4);
            assert!(p.iter().all(|&j| partners[j].contains(&i)));
        }
        // With five clients everyone else is a partner.
        assert_eq!(ring_partners(5)[0], vec![1, 2, 3, 4]);
    }

    #[test]
    fn groups_spread_and_every_member_is_a_friend() {
        let groups = group_members(30, 3, 6);
        assert_eq!(groups[1], vec![10, 11, 12, 13, 14, 15]);
        let partners = ring_partners(30);
        let edges = friendships(&partners, groups.iter().map(Vec::as_slice));
        for members in &groups {
            for &a in members {
                for &b in members {
                    assert!(a == b || edges.contains(&(a.min(b), a.max(b))));
                }
            }
        }
        // 60 ring pairs, plus the 15 pairs of each group not already neighbours (6 are).
        assert_eq!(edges.len(), 60 + 3 * (15 - 9));
    }
}
