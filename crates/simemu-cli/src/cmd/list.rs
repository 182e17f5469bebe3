//! `simemu list`.

use anyhow::Result;
use clap::{Args, ValueEnum};
use simemu_core::Registry;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Simulators,
    Generators,
    Statistics,
}

#[derive(Args)]
pub struct ListArgs {
    /// Only this kind of plugin.
    pub kind: Option<Kind>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub fn run(reg: &Registry, a: &ListArgs) -> Result<()> {
    let want = |k: Kind| a.kind.is_none() || a.kind == Some(k);
    let mut json = serde_json::Map::new();
    if want(Kind::Simulators) {
        let mut list = Vec::new();
        if !a.json {
            println!("simulators:");
        }
        for e in reg.simulators() {
            let built = (e.build)(&serde_json::Value::Null);
            let params = built
                .as_ref()
                .map(|s| s.params().to_vec())
                .unwrap_or_default();
            if a.json {
                list.push(serde_json::json!({"name": e.name, "description": e.description, "origin": e.origin.to_string(), "params": params, "options": e.options}));
                continue;
            }
            println!("  {:<16} {}  [{}]", e.name, e.description, e.origin);
            for p in &params {
                let units = if p.units.is_empty() {
                    String::new()
                } else {
                    format!(" {}", p.units)
                };
                println!(
                    "      --param {:<10} [{}, {}]{units}, default {}: {}",
                    p.name, p.min, p.max, p.default, p.description
                );
            }
            for o in &e.options {
                println!(
                    "      --option {:<9} default {}: {}",
                    o.name, o.default, o.description
                );
            }
        }
        json.insert("simulators".into(), list.into());
    }
    if want(Kind::Generators) {
        let mut list = Vec::new();
        if !a.json {
            println!("generators:");
        }
        for e in reg.generators() {
            if a.json {
                list.push(serde_json::json!({"name": e.name, "description": e.description, "origin": e.origin.to_string(), "options": e.options}));
                continue;
            }
            println!("  {:<16} {}  [{}]", e.name, e.description, e.origin);
            for o in &e.options {
                println!(
                    "      {:<16} default {}: {}",
                    o.name, o.default, o.description
                );
            }
        }
        json.insert("generators".into(), list.into());
    }
    if want(Kind::Statistics) {
        let mut list = Vec::new();
        if !a.json {
            println!("statistics:");
        }
        for e in reg.statistics() {
            if a.json {
                list.push(serde_json::json!({"name": e.name, "description": e.description, "origin": e.origin.to_string(), "options": e.options}));
                continue;
            }
            println!("  {:<16} {}  [{}]", e.name, e.description, e.origin);
            for o in &e.options {
                println!(
                    "      {:<16} default {}: {}",
                    o.name, o.default, o.description
                );
            }
        }
        json.insert("statistics".into(), list.into());
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(())
}
