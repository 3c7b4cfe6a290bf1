//! Which live node should own each shard: rendezvous (highest random weight) hashing. Every
//! node computes the same answer from the same member list, with no coordination; a node that
//! leaves moves only its own shards, and one that joins takes about 1/n of them from the
//! others, never shuffles the rest.

/// A live member as the assignment sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate<'a> {
    pub node: &'a str,
    pub dc: &'a str,
}

fn fnv1a(bytes: impl IntoIterator<Item = u8>, seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in bytes {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    // A final avalanche (splitmix64's), so that ids differing in their last byte spread well.
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The weight of `node` for `shard`.
fn weight(node: &str, shard: u32) -> u64 {
    fnv1a(
        node.bytes(),
        u64::from(shard).wrapping_mul(0x9e37_79b9_7f4a_7c15),
    )
}

/// The node that should own `shard`: among the members of `prefer_dc` when it has any live
/// one, else among all; the one of highest weight (ties, impossible in practice, go to the
/// smaller id). None when there is no member.
pub fn desired_owner<'a>(
    shard: u32,
    members: &[Candidate<'a>],
    prefer_dc: Option<&str>,
) -> Option<&'a str> {
    let preferred = prefer_dc.filter(|dc| members.iter().any(|m| m.dc == *dc));
    members
        .iter()
        .filter(|m| preferred.is_none_or(|dc| m.dc == dc))
        .max_by(|a, b| {
            weight(a.node, shard)
                .cmp(&weight(b.node, shard))
                .then_with(|| b.node.cmp(a.node))
        })
        .map(|m| m.node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cistern_actors::registry::SHARDS;

    fn owners(nodes: &[&str]) -> Vec<String> {
        let members: Vec<_> = nodes
            .iter()
            .map(|n| Candidate { node: n, dc: "dc1" })
            .collect();
        (0..SHARDS)
            .map(|s| {
                desired_owner(s, &members, None)
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn every_node_gets_a_fair_share() {
        let owners = owners(&["node-a", "node-b", "node-c"]);
        for n in ["node-a", "node-b", "node-c"] {
            let share = owners.iter().filter(|o| *o == n).count();
            assert!((12..=32).contains(&share), "{n} owns {share} of {SHARDS}");
        }
    }

    #[test]
    fn a_leaving_node_moves_only_its_own_shards_and_a_joining_one_takes_few() {
        let three = owners(&["node-a", "node-b", "node-c"]);
        let two = owners(&["node-a", "node-c"]);
        for (s, (before, after)) in three.iter().zip(&two).enumerate() {
            if before != "node-b" {
                assert_eq!(before, after, "shard {s} moved although its owner stayed");
            }
        }
        // Joining: only shards that go to the new node move.
        let four = owners(&["node-a", "node-b", "node-c", "node-d"]);
        let moved = three.iter().zip(&four).filter(|(a, b)| a != b).count();
        assert!(four
            .iter()
            .zip(&three)
            .all(|(new, old)| new == old || new == "node-d"));
        assert!(
            moved <= SHARDS as usize / 2,
            "{moved} shards moved for one joining node"
        );
    }

    #[test]
    fn the_preferred_data_centre_takes_every_shard_while_it_has_a_node() {
        let members = [
            Candidate {
                node: "a1",
                dc: "dc1",
            },
            Candidate {
                node: "b1",
                dc: "dc2",
            },
            Candidate {
                node: "b2",
                dc: "dc2",
            },
        ];
        for s in 0..SHARDS {
            assert_eq!(desired_owner(s, &members, Some("dc1")), Some("a1"));
            assert_ne!(desired_owner(s, &members[1..], Some("dc1")), None);
        }
        assert_eq!(desired_owner(0, &[], None), None);
    }
}
