//! The JSON of `GET /api/v1/containers`: the containers a caller may enter across the
//! gateway's Docker engines, and which engines answered.
//!
//! Guarantees: an engine that is down is listed as down beside the containers of the others,
//! never silently missing; an engine's `detail` says why in words, never an address.

/// `GET /api/v1/containers`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ContainerList {
    /// By engine, then Compose address, then name.
    pub containers: Vec<ContainerView>,
    /// Every engine the gateway asked, up or down.
    pub engines: Vec<EngineView>,
}

/// A container as the container list shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ContainerView {
    /// The engine that holds it: `engine/name` enters it on that engine.
    pub engine: String,
    /// Docker's id, shortened to 12 characters.
    pub id: String,
    pub name: String,
    /// `project.service.N` when the container belongs to a Compose project.
    pub address: Option<String>,
    pub image: String,
    /// Docker's state: `running`, `exited`, `paused`, …
    pub state: String,
    pub running: bool,
}

/// Whether an engine answered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct EngineView {
    pub name: String,
    /// `up` or `down`.
    pub state: String,
    /// Why it is down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl ContainerView {
    /// How to name it to enter it: its Compose address or name, qualified by its engine when
    /// the gateway has several.
    pub fn target(&self, qualified: bool) -> String {
        let bare = self.address.as_deref().unwrap_or(&self.name);
        if qualified { format!("{}/{bare}", self.engine) } else { bare.to_owned() }
    }
}
