//! `entry ls`: the containers the caller may enter on every engine of the gateway, with the
//! address to give `entry enter` (qualified by its engine when the gateway has several), image
//! and state; engines that are down are named on stderr and never hide the others' containers.

use super::ServerArgs;
use super::sessions::aligned;
use crate::wire::containers::ContainerList;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: ServerArgs,
    /// Print the API's JSON.
    #[arg(long)]
    json: bool,
    /// Only running containers.
    #[arg(long)]
    running: bool,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut list: ContainerList = args.server.client()?.containers().await?;
    if args.running {
        list.containers.retain(|container| container.running);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    print!("{}", table(&list));
    for engine in list.engines.iter().filter(|engine| engine.state != "up") {
        let detail = engine.detail.as_deref().unwrap_or("no answer");
        eprintln!("entry: engine {} is {}: {detail}; its containers are not listed", engine.name, engine.state);
    }
    Ok(())
}

/// The list as an aligned table; the engine column only when there are several engines.
fn table(list: &ContainerList) -> String {
    let several = list.engines.len() > 1;
    let rows: Vec<Vec<String>> = list
        .containers
        .iter()
        .map(|container| {
            let mut row = vec![container.target(several), container.name.clone(), container.image.clone()];
            row.push(container.state.clone());
            if several {
                row.insert(0, container.engine.clone());
            }
            row
        })
        .collect();
    let header: &[&str] = if several {
        &["ENGINE", "ENTER AS", "NAME", "IMAGE", "STATE"]
    } else {
        &["ENTER AS", "NAME", "IMAGE", "STATE"]
    };
    aligned(header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::containers::{ContainerView, EngineView};

    fn container(engine: &str, name: &str, address: Option<&str>) -> ContainerView {
        ContainerView {
            engine: engine.into(),
            id: "0123456789ab".into(),
            name: name.into(),
            address: address.map(str::to_owned),
            image: "entry-test-bash".into(),
            state: "running".into(),
            running: true,
        }
    }

    fn engine(name: &str, down: Option<&str>) -> EngineView {
        EngineView {
            name: name.into(),
            state: if down.is_some() { "down" } else { "up" }.into(),
            detail: down.map(str::to_owned),
        }
    }

    #[test]
    fn one_engine_shows_bare_addresses_several_qualify_them() {
        let one = ContainerList {
            containers: vec![container("local", "shop-web-1", Some("shop.web.1"))],
            engines: vec![engine("local", None)],
        };
        let text = table(&one);
        assert!(text.starts_with("ENTER AS"), "{text}");
        assert!(text.contains("shop.web.1") && !text.contains("local/"), "{text}");
        let several = ContainerList {
            containers: vec![container("host-a", "db", None), container("host-b", "shop-web-1", Some("shop.web.1"))],
            engines: vec![
                engine("host-a", None),
                engine("host-b", None),
                engine("host-c", Some("engine host-c is unreachable")),
            ],
        };
        let text = table(&several);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("ENGINE") && lines[0].contains("ENTER AS"), "{text}");
        assert!(lines[1].starts_with("host-a") && lines[1].contains("host-a/db"), "{text}");
        assert!(lines[2].contains("host-b/shop.web.1") && lines[2].contains("shop-web-1"), "{text}");
    }
}
