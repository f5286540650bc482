//! Rows into the API's views: the store knows the views of `wire::api`; the views know nothing
//! of the store.
//!
//! Guarantees: a row converts field for field; a value this version does not know (written by
//! a newer gateway, or by hand) is an [`UnknownValue`] naming the session and the field, never
//! a guess.

use super::{AuditRow, HoldRow, SessionRow};
use crate::wire::api::{AuditEntry, EndReason, HoldView, ReapStatus, Role, SessionView};

/// A row holds a value this version does not know (written by a newer gateway, or by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session {session}: unknown {field} {value:?}")]
pub struct UnknownValue {
    pub session: String,
    pub field: &'static str,
    pub value: String,
}

impl TryFrom<SessionRow> for SessionView {
    type Error = UnknownValue;

    fn try_from(row: SessionRow) -> Result<Self, UnknownValue> {
        let unknown = |field, value: &str| UnknownValue { session: row.id.clone(), field, value: value.to_owned() };
        let role = Role::parse(&row.role).ok_or_else(|| unknown("role", &row.role))?;
        let close_reason = row
            .close_reason
            .as_deref()
            .map(|code| EndReason::parse(code).ok_or_else(|| unknown("close reason", code)))
            .transpose()?;
        let reap_status = row
            .reap_status
            .as_deref()
            .map(|text| ReapStatus::parse(text).ok_or_else(|| unknown("reap status", text)))
            .transpose()?;
        let SessionRow {
            id,
            user,
            role: _,
            token_id,
            source_addr,
            client_kind,
            engine,
            container_id,
            container_name,
            container_image,
            command,
            tty,
            exec_user,
            exec_user_effective,
            workdir,
            exec_env,
            node_id,
            exec_id,
            started_at,
            ended_at,
            status,
            exit_code,
            close_reason: _,
            close_detail,
            initial_cols,
            initial_rows,
            last_cols,
            last_rows,
            bytes_in,
            bytes_out,
            recording_location,
            recording_size,
            recording_sha256,
            recording_text_size,
            recording_error,
            reap_status: _,
            reap_killed,
            reap_detail,
            container_address: _,
            hold,
        } = row;
        Ok(Self {
            id,
            user,
            role,
            token_id,
            source_addr,
            client_kind,
            engine,
            container_id,
            container_name,
            container_image,
            command,
            tty,
            exec_user,
            exec_user_effective,
            workdir,
            exec_env,
            node_id,
            exec_id,
            started_at,
            ended_at,
            status,
            exit_code,
            close_reason,
            close_detail,
            initial_cols,
            initial_rows,
            last_cols,
            last_rows,
            bytes_in,
            bytes_out,
            recording_location,
            recording_size,
            recording_sha256,
            recording_text_size,
            recording_error,
            reap_status,
            reap_killed,
            reap_detail,
            rule_hits: 0,
            pending_reviews: 0,
            hold: hold.map(HoldView::from),
        })
    }
}

impl From<HoldRow> for HoldView {
    fn from(row: HoldRow) -> Self {
        let HoldRow { reason, by, at } = row;
        Self { reason, by, at }
    }
}

impl From<AuditRow> for AuditEntry {
    fn from(row: AuditRow) -> Self {
        let AuditRow { id, at, actor, role, action, session_id, source_addr, detail } = row;
        Self { id, at, actor, role, action, session_id, source_addr, detail }
    }
}
