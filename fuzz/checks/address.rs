//! `address`: container addresses from the `container` header ([`ContainerAddress::parse`],
//! and [`Target::parse`] with an optional `engine/`) and from LAIN's
//! `app-name`/`proc-name`/`instance-no` ([`ContainerAddress::from_lain`]).
//!
//! Input: the whole text is one `container` header; split at `\n` it is the three LAIN
//! headers. Checks: whatever is accepted uses only the characters Docker allows in names
//! (so it cannot reach the Engine API as a path or a query), a Compose address names a
//! positive instance, and what `parse` accepts reads the same when written out and parsed
//! again.

use entry::runtime::{ComposeAddress, ContainerAddress, Target};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(address) = ContainerAddress::parse(&text) {
        docker_safe(&address);
        assert!(address.to_string().len() <= text.len(), "{address} is longer than {text:?}");
        assert_eq!(ContainerAddress::parse(&address.to_string()), Ok(address.clone()), "{text:?}");
    }
    if let Ok(target) = Target::parse(&text) {
        target_safe(&target);
        assert_eq!(Target::parse(&target.to_string()), Ok(target.clone()), "{text:?}");
    }
    let mut parts = text.splitn(3, '\n');
    let (app, proc_name, instance) =
        (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    if let Ok(address) = ContainerAddress::from_lain(app, proc_name, instance) {
        docker_safe(&address);
        let ContainerAddress::Compose(compose) = &address else { panic!("LAIN headers gave {address:?}") };
        assert_eq!((compose.project.as_str(), compose.service.as_str()), (app.trim(), proc_name.trim()));
    }
}

/// An engine-qualified address: the engine follows Docker's name grammar too (it names a
/// configured engine or a Swarm node and is never sent to an engine), the address is safe.
pub(crate) fn target_safe(target: &Target) {
    if let Some(engine) = &target.engine {
        docker_safe(&ContainerAddress::Name(engine.clone()));
    }
    docker_safe(&target.address);
}

/// Docker's name grammar `[a-zA-Z0-9][a-zA-Z0-9_.-]*` for a name or a Compose project; a
/// Compose service (matched as a label value) only needs the characters.
pub(crate) fn docker_safe(address: &ContainerAddress) {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    let name = |name: &str| {
        let first = name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
        assert!(first && name.bytes().all(allowed) && name.len() <= 255, "{name:?} is not a Docker name");
    };
    match address {
        ContainerAddress::Name(text) => name(text),
        ContainerAddress::Compose(ComposeAddress { project, service, number }) => {
            name(project);
            assert!(!service.is_empty() && service.bytes().all(allowed), "service {service:?} of {address}");
            assert!(*number > 0, "instance 0 of {address}");
        }
    }
}
