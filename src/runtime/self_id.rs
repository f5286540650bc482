//! Finds the id of the container this process runs in, so Entry never enters itself.
//!
//! Guarantees: returns only a 64-hex-digit id read from this process's own cgroup or mount
//! table; `None` when not in a container or when nothing conclusive is found.

/// The id of the container Entry runs in, if any.
pub fn own_container_id() -> Option<String> {
    ["/proc/self/cgroup", "/proc/self/mountinfo"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .find_map(|text| find_container_id(&text))
}

/// Looks for `docker-<id>.scope`, `/docker/<id>` or `/docker/containers/<id>/` in a
/// cgroup or mountinfo listing.
fn find_container_id(text: &str) -> Option<String> {
    for marker in ["docker-", "/docker/", "/docker/containers/"] {
        for (index, _) in text.match_indices(marker) {
            let candidate = &text[index + marker.len()..];
            let id: String = candidate.chars().take_while(|c| c.is_ascii_hexdigit()).collect();
            if id.len() == 64 {
                return Some(id);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8ee746039f56770ad8404fee6f11e650f8ccebd727ef67536d108ae80b715718";

    #[test]
    fn cgroup_v1_and_v2_and_mountinfo() {
        assert_eq!(find_container_id(&format!("12:pids:/docker/{ID}\n")), Some(ID.into()));
        assert_eq!(find_container_id(&format!("0::/system.slice/docker-{ID}.scope\n")), Some(ID.into()));
        let mountinfo = format!("645 640 254:0 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw\n");
        assert_eq!(find_container_id(&mountinfo), Some(ID.into()));
        assert_eq!(find_container_id("0::/\n"), None);
        assert_eq!(find_container_id("0::/docker/abc\n"), None);
    }
}
