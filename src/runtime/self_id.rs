//! Finds the id of the container this process runs in, so Entry never enters itself.
//!
//! Two sources, as Docker's own tooling reads them:
//! - `/proc/self/cgroup`: under cgroup v1, or v2 with the host's cgroup namespace, a
//!   container's path names it (`/docker/<id>`, `/system.slice/docker-<id>.scope`).
//! - `/proc/self/mountinfo`: under cgroup v2 with a private cgroup namespace the cgroup file
//!   is only `0::/`, but Docker bind-mounts `/etc/hostname`, `/etc/hosts` and
//!   `/etc/resolv.conf` from `<data-root>/containers/<id>/`, and that source path names it.
//!
//! Guarantees: returns only a 64-hex-digit id read from this process's own cgroup path or from
//! the source of one of those three bind mounts; `None` when not in a container (a host's
//! mount table may list other containers' mounts, but never at those mount points) or when
//! nothing conclusive is found. When detection fails, the documented fallback is the label
//! `entry.deny=true` on the gateway's container.

/// The id of the container Entry runs in, if any.
pub fn own_container_id() -> Option<String> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    find_container_id(&read("/proc/self/cgroup"), &read("/proc/self/mountinfo"))
}

/// The container id named by a cgroup listing, else by a mountinfo listing.
fn find_container_id(cgroup: &str, mountinfo: &str) -> Option<String> {
    from_cgroup(cgroup).or_else(|| from_mountinfo(mountinfo))
}

/// `hierarchy:controllers:path` lines; the id is a path component `docker-<id>.scope` or
/// one that follows `/docker/`.
fn from_cgroup(text: &str) -> Option<String> {
    text.lines().filter_map(|line| line.splitn(3, ':').nth(2)).find_map(|path| {
        let components: Vec<&str> = path.split('/').collect();
        components.iter().enumerate().find_map(|(index, component)| {
            let scoped = component.strip_prefix("docker-").and_then(|rest| rest.strip_suffix(".scope"));
            let after_docker = (index > 0 && components[index - 1] == "docker").then_some(*component);
            scoped.or(after_docker).filter(|id| is_id(id)).map(str::to_owned)
        })
    })
}

/// Mount points Docker fills from the container's own directory.
const CONTAINER_FILES: [&str; 3] = ["/etc/hostname", "/etc/hosts", "/etc/resolv.conf"];

/// mountinfo lines are `id parent major:minor root mount-point …`; a line whose mount point is
/// one of [`CONTAINER_FILES`] and whose root is `…/containers/<id>/<file>` names the container.
fn from_mountinfo(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut fields = line.split(' ');
        let root = fields.nth(3)?;
        let mount_point = fields.next()?;
        if !CONTAINER_FILES.contains(&mount_point) {
            return None;
        }
        let components: Vec<&str> = root.split('/').collect();
        components.windows(3).find(|w| w[0] == "containers" && is_id(w[1]) && !w[2].is_empty()).map(|w| w[1].to_owned())
    })
}

fn is_id(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "c222538acb9310fdf1c2e30f93686c70c0c89c0f0e5ef0a48aa58bd21a059e69";
    const OTHER: &str = "8ee746039f56770ad8404fee6f11e650f8ccebd727ef67536d108ae80b715718";

    /// A container's `/proc/self/mountinfo` (trimmed), as dockerd 20.10 on ext4 writes it.
    fn container_mountinfo() -> String {
        format!(
            "76 52 0:40 / / rw,relatime master:2 - overlay overlay rw,lowerdir=/var/lib/docker/overlay2/l/SCU3:/var/lib/docker/overlay2/l/HPLU,upperdir=/var/lib/docker/overlay2/9aafd894a35980aad22e8bff2b74be73941e188ef22d3017d18672e6220b93de/diff\n\
             77 76 0:43 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n\
             81 80 0:47 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n\
             92 78 0:48 / /dev/shm rw,nosuid,nodev,noexec,relatime - tmpfs shm rw,size=65536k\n\
             93 76 254:0 /var/lib/docker/containers/{ID}/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw\n\
             94 76 254:0 /var/lib/docker/containers/{ID}/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw\n\
             95 76 254:0 /var/lib/docker/containers/{ID}/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw\n"
        )
    }

    #[test]
    fn cgroup_v1_names_the_container() {
        let cgroup =
            format!("12:pids:/docker/{ID}\n4:memory:/docker/{ID}\n1:name=systemd:/docker/{ID}\n0::/docker/{ID}\n");
        assert_eq!(find_container_id(&cgroup, ""), Some(ID.into()));
        let systemd_driver = format!("0::/system.slice/docker-{ID}.scope\n");
        assert_eq!(find_container_id(&systemd_driver, ""), Some(ID.into()));
    }

    #[test]
    fn cgroup_v2_with_a_private_namespace_falls_back_to_mountinfo() {
        assert_eq!(find_container_id("0::/\n", &container_mountinfo()), Some(ID.into()));
        // The data root may live elsewhere (rootless: ~/.local/share/docker).
        let rootless = format!(
            "94 76 254:0 /home/u/.local/share/docker/containers/{ID}/hostname /etc/hostname rw - ext4 /dev/vda rw\n"
        );
        assert_eq!(find_container_id("0::/\n", &rootless), Some(ID.into()));
    }

    #[test]
    fn not_in_a_container_finds_nothing() {
        // A host: its own cgroups, and other containers' mounts (shm, overlay) in its table.
        let cgroup = "0::/user.slice/user-1000.slice/session-2.scope\n";
        let host = format!(
            "25 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
             45 25 254:0 /var/lib/docker /var/lib/docker rw,relatime shared:1 - ext4 /dev/vda rw\n\
             301 45 0:52 / /var/lib/docker/containers/{OTHER}/mounts/shm rw - tmpfs shm rw\n\
             302 45 0:53 / /var/lib/docker/overlay2/{OTHER}/merged rw - overlay overlay rw\n"
        );
        assert_eq!(find_container_id(cgroup, &host), None);
        assert_eq!(find_container_id("0::/\n", ""), None);
        assert_eq!(find_container_id("", ""), None);
        assert_eq!(find_container_id("0::/docker/abc\n", ""), None, "too short to be an id");
        let not_a_file = format!("94 76 254:0 /var/lib/docker/containers/{ID} /etc/hostname rw - ext4 /dev/vda rw\n");
        assert_eq!(find_container_id("0::/\n", &not_a_file), None);
    }
}
