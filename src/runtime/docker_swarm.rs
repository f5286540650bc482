//! What a Swarm manager says, through bollard: the task that runs a service's slot and the
//! node that runs it (with its `entry.endpoint` label).
//!
//! Guarantees: an engine that is not a manager answers [`RuntimeError::NotSwarmManager`],
//! never a wrong task; of a slot's tasks the running one is chosen, else the newest one that
//! should run; filters are sent as the Engine API's JSON, never spliced into a URL.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{Task, TaskState};
use bollard::query_parameters::ListTasksOptions;

use super::docker::{api_error, unavailable};
use super::{ENDPOINT_LABEL, RuntimeError, SwarmNode, SwarmTask};

/// The task of `service` at `slot` that should run.
pub(super) async fn task(docker: &Docker, service: &str, slot: u64) -> Result<Option<SwarmTask>, RuntimeError> {
    let filters = HashMap::from([
        ("service".to_owned(), vec![service.to_owned()]),
        ("desired-state".to_owned(), vec!["running".to_owned()]),
    ]);
    let tasks = docker.list_tasks(Some(ListTasksOptions { filters: Some(filters) })).await.map_err(swarm_error)?;
    Ok(pick(tasks, service, slot))
}

/// The node with this id or host name.
pub(super) async fn node(docker: &Docker, node: &str) -> Result<Option<SwarmNode>, RuntimeError> {
    match docker.inspect_node(node).await {
        Ok(found) => Ok(Some(SwarmNode {
            id: found.id.unwrap_or_default(),
            hostname: found.description.and_then(|d| d.hostname).unwrap_or_default(),
            endpoint: found.spec.and_then(|s| s.labels).and_then(|mut labels| labels.remove(ENDPOINT_LABEL)),
        })),
        Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
        Err(error) => Err(swarm_error(error)),
    }
}

/// Of the tasks listed for `service`, the one at `slot`: running first, else the newest.
/// A service filter also matches by id prefix, so the task's service name is not checked
/// here; the slot is.
fn pick(tasks: Vec<Task>, service: &str, slot: u64) -> Option<SwarmTask> {
    let mut at_slot: Vec<Task> =
        tasks.into_iter().filter(|task| task.slot.and_then(|s| u64::try_from(s).ok()) == Some(slot)).collect();
    at_slot.sort_by_key(|task| {
        let running = task.status.as_ref().and_then(|s| s.state) == Some(TaskState::RUNNING);
        (running, task.updated_at.clone().map(|at| at.to_string()))
    });
    let task = at_slot.pop()?;
    let status = task.status.unwrap_or_default();
    tracing::debug!(service, slot, task.id = ?task.id, "swarm slot resolved to a task");
    Some(SwarmTask {
        id: task.id.unwrap_or_default(),
        node_id: task.node_id.unwrap_or_default(),
        container_id: status.container_status.and_then(|c| c.container_id).filter(|id| !id.is_empty()),
        state: status.state.map(|s| s.to_string()).unwrap_or_default(),
    })
}

fn swarm_error(error: BollardError) -> RuntimeError {
    match &error {
        BollardError::DockerResponseServerError { status_code: 503 | 406, message }
            if message.contains("swarm manager") || message.contains("not part of a swarm") =>
        {
            RuntimeError::NotSwarmManager(message.clone())
        }
        BollardError::DockerResponseServerError { .. } => api_error(error),
        _ => unavailable(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerStatus, TaskStatus};

    fn task(id: &str, slot: i64, state: TaskState, container: &str) -> Task {
        Task {
            id: Some(id.into()),
            slot: Some(slot),
            node_id: Some(format!("node-{id}")),
            status: Some(TaskStatus {
                state: Some(state),
                container_status: Some(ContainerStatus { container_id: Some(container.into()), ..Default::default() }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_running_task_of_the_slot_is_chosen() {
        let tasks = vec![
            task("a", 1, TaskState::RUNNING, "c1"),
            task("b", 2, TaskState::PREPARING, ""),
            task("c", 2, TaskState::RUNNING, "c2"),
            task("d", 3, TaskState::STARTING, "c3"),
        ];
        let two = pick(tasks.clone(), "web", 2).unwrap();
        assert_eq!((two.id.as_str(), two.node_id.as_str(), two.container_id.as_deref()), ("c", "node-c", Some("c2")));
        let three = pick(tasks.clone(), "web", 3).unwrap();
        assert_eq!((three.state.as_str(), three.container_id.as_deref()), ("starting", Some("c3")));
        assert_eq!(pick(tasks, "web", 4), None);
        let preparing = pick(vec![task("b", 2, TaskState::PREPARING, "")], "web", 2).unwrap();
        assert_eq!(preparing.container_id, None);
    }
}
