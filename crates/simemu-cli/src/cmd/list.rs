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
    let kinds = [
        (Kind::Simulators, "simulators"),
        (Kind::Generators, "generators"),
        (Kind::Statistics, "statistics"),
        (Kind::Formats, "formats"),
    ];
    if a.json {
        let mut listing = reg.listing();
        if let Some(all) = listing.as_object_mut() {
            for (kind, title) in kinds {
                if !want(kind) {
                    all.remove(title);
                }
            }
        }
        crate::output::outln!("{}", serde_json::to_string_pretty(&listing)?);
        return Ok(());
    }
    if want(Kind::Simulators) {
        crate::output::outln!("simulators:");
        for e in reg.simulators() {
            let params = (e.build)(&serde_json::Value::Null)
                .map(|s| s.params().to_vec())
                .unwrap_or_default();
            crate::output::outln!("  {:<16} {}  [{}]", e.name, e.description, e.origin);
            for p in &params {
                let units = if p.units.is_empty() {
                    String::new()
                } else {
                    format!(" {}", p.units)
                };
                crate::output::outln!(
                    "      --param {:<10} [{}, {}]{units}, default {}: {}",
                    p.name,
                    p.min,
                    p.max,
                    p.default,
                    p.description
                );
            }
            print_options(&e.options, |o| format!("--option {:<9}", o.name));
        }
    }
    let plain = |kind: Kind, title: &str, entries: Vec<(&str, &str, String, &Vec<OptionSpec>)>| {
        if !want(kind) {
            return;
        }
        crate::output::outln!("{title}:");
        for (name, description, origin, options) in entries {
            crate::output::outln!("  {name:<16} {description}  [{origin}]");
            print_options(options, |o| format!("{:<21}", o.name));
        }
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
    );
    plain(
        Kind::Formats,
        "formats",
        reg.formats()
            .map(|e| {
                (
                    e.name.as_str(),
                    e.description.as_str(),
                    e.origin_and_extensions(),
                    &e.options,
                )
            })
            .collect(),
    );
    Ok(())
}

/// Prints a plugin's options, each group's under its heading (options come
/// grouped together, in the plugin's order).
fn print_options(options: &[OptionSpec], label: impl Fn(&OptionSpec) -> String) {
    let mut group = "";
    for o in options {
        if o.group != group {
            group = &o.group;
            crate::output::outln!("    {group}:");
        }
        let indent = if group.is_empty() {
            "      "
        } else {
            "        "
        };
        crate::output::outln!(
            "{indent}{} default {}: {}",
            label(o),
            o.default,
            o.description
        );
    }
}
