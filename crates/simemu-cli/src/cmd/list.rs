//! `simemu list`.

use anyhow::Result;
use clap::{Args, ValueEnum};
use simemu_core::{OptionSpec, Registry};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Simulators,
    Generators,
    Statistics,
    Formats,
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
            print_options(&e.options, |o| format!("--option {:<9}", o.name));
        }
        json.insert("simulators".into(), list.into());
    }
    let plain = |kind: Kind,
                 title: &str,
                 entries: Vec<(&str, &str, String, &Vec<OptionSpec>)>,
                 json: &mut serde_json::Map<String, serde_json::Value>| {
        if !want(kind) {
            return;
        }
        if !a.json {
            println!("{title}:");
        }
        let mut list = Vec::new();
        for (name, description, origin, options) in entries {
            if a.json {
                list.push(serde_json::json!({"name": name, "description": description, "origin": origin, "options": options}));
                continue;
            }
            println!("  {name:<16} {description}  [{origin}]");
            print_options(options, |o| format!("{:<21}", o.name));
        }
        json.insert(title.into(), list.into());
    };
    plain(
        Kind::Generators,
        "generators",
        reg.generators()
            .map(|e| {
                (
                    e.name.as_str(),
                    e.description.as_str(),
                    e.origin.to_string(),
                    &e.options,
                )
            })
            .collect(),
        &mut json,
    );
    plain(
        Kind::Statistics,
        "statistics",
        reg.statistics()
            .map(|e| {
                (
                    e.name.as_str(),
                    e.description.as_str(),
                    e.origin.to_string(),
                    &e.options,
                )
            })
            .collect(),
        &mut json,
    );
    plain(
        Kind::Formats,
        "formats",
        reg.formats()
            .map(|e| {
                (
                    e.name.as_str(),
                    e.description.as_str(),
                    format!("{}; .{}", e.origin, e.extensions.join(", .")),
                    &e.options,
                )
            })
            .collect(),
        &mut json,
    );
    if a.json {
        println!("{}", serde_json::to_string_pretty(&json)?);
    }
    Ok(())
}

/// Prints a plugin's options, each group's under its heading (options come
/// grouped together, in the plugin's order).
fn print_options(options: &[OptionSpec], label: impl Fn(&OptionSpec) -> String) {
    let mut group = "";
    for o in options {
        if o.group != group {
            group = &o.group;
            println!("    {group}:");
        }
        let indent = if group.is_empty() {
            "      "
        } else {
            "        "
        };
        println!(
            "{indent}{} default {}: {}",
            label(o),
            o.default,
            o.description
        );
    }
}
