//! A session's manifest: what its recording is (the stored object's SHA-256 and size), what its
//! session row said when it was sealed, the SHA-256 of its command index, and its place in its
//! gateway node's chain (the SHA-256 of the node's previous manifest). Pure: no I/O.
//!
//! Guarantees: the bytes of a manifest are made once ([`Manifest::to_bytes`], pretty JSON with a
//! fixed field order) and from then on are checked as stored, never re-serialised; the row
//! fields a manifest holds are ones that do not change after a session is final (no reaper
//! outcome, no rule counters); a comparison with a current row names every field that differs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::wire::api::{EndReason, Role, SessionStatus, SessionView};
use crate::wire::search::CommandEntry;

/// The `format` of the manifests this version writes.
pub const FORMAT: &str = "entry-manifest/1";

/// A signed statement of one session's recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub session: SessionFacts,
    pub recording: RecordingFacts,
    /// The command index as sealed (`None` when the gateway's index was off).
    pub index: Option<IndexFacts>,
    /// The gateway node that sealed it, whose chain it extends.
    pub node: String,
    /// Its place in the node's chain, from 1.
    pub seq: i64,
    /// The node's previous manifest: its session and the SHA-256 of its bytes (`None` for a
    /// node's first).
    pub previous: Option<ChainLink>,
    /// Unix milliseconds.
    pub signed_at: i64,
    /// The signing key's id, as minisign prints it.
    pub key_id: String,
}

/// A pointer to the manifest before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    pub session: String,
    pub sha256: String,
}

/// The session row's fields that say who did what, where and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionFacts {
    pub id: String,
    pub user: String,
    pub role: Role,
    pub token_id: Option<String>,
    pub source_addr: String,
    pub client_kind: String,
    /// The Docker engine that held the exec; manifests made before engines were recorded
    /// read as `local`, the one engine such gateways had.
    #[serde(default = "crate::wire::api::default_engine")]
    pub engine: String,
    pub container_id: String,
    pub container_name: String,
    pub container_image: String,
    pub command: Vec<String>,
    pub tty: bool,
    pub exec_user: Option<String>,
    pub exec_user_effective: Option<String>,
    pub workdir: Option<String>,
    pub exec_env: Option<BTreeMap<String, String>>,
    pub node_id: String,
    pub exec_id: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub status: SessionStatus,
    pub exit_code: Option<i64>,
    pub close_reason: Option<String>,
    pub close_detail: Option<String>,
    pub bytes_in: i64,
    pub bytes_out: i64,
}

impl SessionFacts {
    pub fn of(view: &SessionView) -> Self {
        Self {
            id: view.id.clone(),
            user: view.user.clone(),
            role: view.role,
            token_id: view.token_id.clone(),
            source_addr: view.source_addr.clone(),
            client_kind: view.client_kind.clone(),
            engine: view.engine.clone(),
            container_id: view.container_id.clone(),
            container_name: view.container_name.clone(),
            container_image: view.container_image.clone(),
            command: view.command.clone(),
            tty: view.tty,
            exec_user: view.exec_user.clone(),
            exec_user_effective: view.exec_user_effective.clone(),
            workdir: view.workdir.clone(),
            exec_env: view.exec_env.clone(),
            node_id: view.node_id.clone(),
            exec_id: view.exec_id.clone(),
            started_at: view.started_at,
            ended_at: view.ended_at,
            status: view.status,
            exit_code: view.exit_code,
            close_reason: view.close_reason.map(EndReason::as_str).map(str::to_owned),
            close_detail: view.close_detail.clone(),
            bytes_in: view.bytes_in,
            bytes_out: view.bytes_out,
        }
    }

    /// The names of the fields where `other` says something else.
    pub fn differences(&self, other: &SessionFacts) -> Vec<&'static str> {
        let (Ok(serde_json::Value::Object(mine)), Ok(serde_json::Value::Object(theirs))) =
            (serde_json::to_value(self), serde_json::to_value(other))
        else {
            return vec!["session"];
        };
        FIELDS.iter().copied().filter(|field| mine.get(*field) != theirs.get(*field)).collect()
    }
}

/// [`SessionFacts`]' fields, as serialised.
const FIELDS: &[&str] = &[
    "id",
    "user",
    "role",
    "token_id",
    "source_addr",
    "client_kind",
    "engine",
    "container_id",
    "container_name",
    "container_image",
    "command",
    "tty",
    "exec_user",
    "exec_user_effective",
    "workdir",
    "exec_env",
    "node_id",
    "exec_id",
    "started_at",
    "ended_at",
    "status",
    "exit_code",
    "close_reason",
    "close_detail",
    "bytes_in",
    "bytes_out",
];

/// The stored recording.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordingFacts {
    /// SHA-256 (hex) of the stored gzip object, byte for byte.
    pub sha256: String,
    /// Its length in bytes.
    pub size: u64,
    /// The length of its decompressed asciicast, when known.
    pub text_size: Option<u64>,
}

/// The command index of the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexFacts {
    pub commands: u64,
    /// [`index_digest`] of its commands.
    pub sha256: String,
}

impl IndexFacts {
    pub fn of(commands: &[CommandEntry]) -> Self {
        Self { commands: commands.len() as u64, sha256: index_digest(commands) }
    }
}

/// The SHA-256 (hex) of a session's commands as `GET /api/v1/sessions/{id}/commands` lists
/// them: of the compact JSON array of its `commands`, so anyone holding that list can check it.
pub fn index_digest(commands: &[CommandEntry]) -> String {
    let bytes = serde_json::to_vec(commands).unwrap_or_default();
    sha256_hex(&bytes)
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why manifest bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not an Entry manifest: {0}")]
    Parse(#[from] serde_json::Error),
    #[error("manifest format {0} is not one this version reads ({FORMAT})")]
    Format(String),
}

impl Manifest {
    /// The bytes stored and signed: pretty JSON, then a newline.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let manifest: Manifest = serde_json::from_slice(bytes)?;
        if manifest.format != FORMAT {
            return Err(ManifestError::Format(manifest.format));
        }
        Ok(manifest)
    }

    /// The trusted comment of its signature (signed with it; shown by `minisign -V`).
    pub fn trusted_comment(&self) -> String {
        format!(
            "entry manifest session:{} node:{} seq:{} recording-sha256:{}",
            self.session.id, self.node, self.seq, self.recording.sha256
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::search::CommandFlag;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            session: SessionFacts {
                id: "s1".into(),
                user: "alice".into(),
                role: Role::Developer,
                token_id: Some("tk1".into()),
                source_addr: "127.0.0.1".into(),
                client_kind: "cli".into(),
                engine: "host-b".into(),
                container_id: "c0ffee".into(),
                container_name: "shop-web-1".into(),
                container_image: "shop:1".into(),
                command: vec!["bash".into()],
                tty: true,
                exec_user: None,
                exec_user_effective: Some(String::new()),
                workdir: None,
                exec_env: Some(BTreeMap::new()),
                node_id: "n1".into(),
                exec_id: "e1".into(),
                started_at: 1_000,
                ended_at: Some(2_000),
                status: SessionStatus::Ended,
                exit_code: Some(0),
                close_reason: Some("exited".into()),
                close_detail: Some(String::new()),
                bytes_in: 10,
                bytes_out: 20,
            },
            recording: RecordingFacts { sha256: "ab".repeat(32), size: 123, text_size: Some(456) },
            index: Some(IndexFacts::of(&[])),
            node: "n1".into(),
            seq: 1,
            previous: None,
            signed_at: 3_000,
            key_id: "0123456789ABCDEF".into(),
        }
    }

    #[test]
    fn a_manifest_reads_back_from_its_bytes_and_the_bytes_are_stable() {
        let manifest = manifest();
        let bytes = manifest.to_bytes();
        assert_eq!(Manifest::parse(&bytes).unwrap(), manifest);
        assert_eq!(Manifest::parse(&bytes).unwrap().to_bytes(), bytes);
        assert!(bytes.ends_with(b"}\n"));
        let text = String::from_utf8(bytes).unwrap();
        assert!(text.starts_with("{\n  \"format\": \"entry-manifest/1\""), "{text}");
    }

    #[test]
    fn the_example_manifest_is_byte_for_byte_the_golden_file() {
        let golden = include_str!("testdata/manifest.json");
        assert_eq!(String::from_utf8(manifest().to_bytes()).unwrap(), golden);
        assert_eq!(Manifest::parse(golden.as_bytes()).unwrap(), manifest());
    }

    #[test]
    fn a_manifest_made_before_engines_were_recorded_reads_as_the_local_engine() {
        let golden = include_str!("testdata/manifest.json");
        let old = golden.replace("    \"engine\": \"host-b\",\n", "");
        assert_ne!(old, golden);
        let parsed = Manifest::parse(old.as_bytes()).unwrap();
        assert_eq!(parsed.session.engine, "local");
        let facts = SessionFacts { engine: "local".into(), ..manifest().session };
        assert!(parsed.session.differences(&facts).is_empty());
        assert_eq!(parsed.session.differences(&manifest().session), vec!["engine"]);
    }

    #[test]
    fn another_format_and_other_json_are_refused() {
        let mut other = manifest();
        other.format = "entry-manifest/9".into();
        assert!(matches!(Manifest::parse(&other.to_bytes()), Err(ManifestError::Format(_))));
        assert!(matches!(Manifest::parse(b"{\"format\": 1}"), Err(ManifestError::Parse(_))));
    }

    #[test]
    fn differences_name_each_changed_field() {
        let sealed = manifest().session;
        assert!(sealed.differences(&sealed).is_empty());
        let mut changed = sealed.clone();
        changed.exit_code = Some(1);
        changed.user = "mallory".into();
        assert_eq!(sealed.differences(&changed), vec!["user", "exit_code"]);
        let value = serde_json::to_value(&sealed).unwrap();
        assert_eq!(value.as_object().unwrap().len(), FIELDS.len(), "FIELDS lists every field");
    }

    #[test]
    fn the_index_digest_is_of_the_commands_as_the_api_lists_them() {
        let commands = vec![
            CommandEntry { seq: 0, at: 1.5, text: "ls -la".into(), flags: vec![] },
            CommandEntry { seq: 1, at: 2.25, text: "sudo rm x".into(), flags: vec![CommandFlag::Paste] },
        ];
        let listed: Vec<CommandEntry> = serde_json::from_str(&serde_json::to_string(&commands).unwrap()).unwrap();
        assert_eq!(index_digest(&listed), index_digest(&commands));
        let mut edited = commands.clone();
        edited[1].text = "ls".into();
        assert_ne!(index_digest(&edited), index_digest(&commands));
        assert_eq!(IndexFacts::of(&commands).commands, 2);
    }
}
