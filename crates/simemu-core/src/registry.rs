//! The plugin registry: simulators, generators and statistics by unique name, from
//! static plugins (registered with `inventory`) and from shared libraries loaded at
//! run time (see [`crate::plugin`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crate::device::GeneratorContext;
use crate::formats::Format;
use crate::params::{did_you_mean, OptionSpec};
use crate::traits::{Generator, Simulator, StatContext, Statistic};
use crate::{Error, Result};

pub type SimulatorBuilder = dyn Fn(&serde_json::Value) -> Result<Box<dyn Simulator>> + Send + Sync;
/// Builds an untrained generator from its configuration; the context's registry
/// lets a generator use other plugins (a baseline that reruns the data's
/// simulator), its device says where to compute.
pub type GeneratorBuilder =
    dyn Fn(&serde_json::Value, &GeneratorContext) -> Result<Box<dyn Generator>> + Send + Sync;
/// Restores a trained generator from a checkpoint path and its stored
/// configuration, onto the context's device (whichever device wrote it).
pub type GeneratorLoader = dyn Fn(&Path, &serde_json::Value, &GeneratorContext) -> Result<Box<dyn Generator>>
    + Send
    + Sync;
pub type StatisticBuilder =
    dyn Fn(&serde_json::Value, &StatContext) -> Result<Box<dyn Statistic>> + Send + Sync;

/// Where an entry came from, shown by `simemu list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Static(String),
    Dynamic { plugin: String, path: String },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Static(p) => write!(f, "static:{p}"),
            Origin::Dynamic { plugin, path } => write!(f, "dynamic:{plugin} ({path})"),
        }
    }
}

#[derive(Clone)]
pub struct SimulatorEntry {
    pub name: String,
    pub description: String,
    pub options: Vec<OptionSpec>,
    pub origin: Origin,
    pub build: Arc<SimulatorBuilder>,
}

#[derive(Clone)]
pub struct GeneratorEntry {
    pub name: String,
    pub description: String,
    pub options: Vec<OptionSpec>,
    pub origin: Origin,
    /// A fresh, untrained generator from its configuration.
    pub build: Arc<GeneratorBuilder>,
    /// A trained generator from a checkpoint path and the stored configuration.
    pub load: Arc<GeneratorLoader>,
}

#[derive(Clone)]
pub struct StatisticEntry {
    pub name: String,
    pub description: String,
    pub options: Vec<OptionSpec>,
    pub origin: Origin,
    pub build: Arc<StatisticBuilder>,
}

/// A foreign file format (see [`crate::formats`]).
#[derive(Clone)]
pub struct FormatEntry {
    pub name: String,
    pub description: String,
    /// File extensions (without the dot) this format reads and writes, e.g. `npz`.
    pub extensions: Vec<String>,
    pub options: Vec<OptionSpec>,
    pub origin: Origin,
    pub format: Arc<dyn Format>,
}

impl FormatEntry {
    /// Where the format comes from and the extensions it claims, as listings
    /// print them ("--format only" for a format no extension selects).
    pub fn origin_and_extensions(&self) -> String {
        if self.extensions.is_empty() {
            format!("{}; --format only", self.origin)
        } else {
            format!("{}; .{}", self.origin, self.extensions.join(", ."))
        }
    }
}

/// A statically linked plugin. Plugin crates submit one with
/// `inventory::submit! { simemu_core::StaticPlugin { name: "...", register } }`
/// and the binary force-links the crate (`use plugin_crate as _;`).
pub struct StaticPlugin {
    pub name: &'static str,
    pub register: fn(&mut Registry) -> Result<()>,
}

inventory::collect!(StaticPlugin);

/// All known plugins by name.
#[derive(Default)]
pub struct Registry {
    simulators: BTreeMap<String, SimulatorEntry>,
    generators: BTreeMap<String, GeneratorEntry>,
    statistics: BTreeMap<String, StatisticEntry>,
    formats: BTreeMap<String, FormatEntry>,
    /// Origin stamped on entries added by the plugin being registered.
    pub(crate) current_origin: Option<Origin>,
    /// Libraries of dynamic plugins, kept loaded for the life of the registry's
    /// process (their code backs the entries' closures and vtables).
    pub(crate) libraries: Vec<Arc<libloading::Library>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// A registry holding every statically linked plugin.
    pub fn with_static_plugins() -> Result<Self> {
        let mut r = Registry::new();
        let mut plugins: Vec<&StaticPlugin> = inventory::iter::<StaticPlugin>.into_iter().collect();
        plugins.sort_by_key(|p| p.name);
        for p in plugins {
            r.current_origin = Some(Origin::Static(p.name.to_string()));
            let res = (p.register)(&mut r);
            r.current_origin = None;
            res.map_err(|e| {
                Error::Other(format!(
                    "static plugin '{}' failed to register: {e}",
                    p.name
                ))
            })?;
        }
        Ok(r)
    }

    pub(crate) fn set_origin(&mut self, origin: Option<Origin>) {
        self.current_origin = origin;
    }

    pub(crate) fn insert_simulator(&mut self, e: SimulatorEntry) {
        self.simulators.insert(e.name.clone(), e);
    }
    pub(crate) fn insert_generator(&mut self, e: GeneratorEntry) {
        self.generators.insert(e.name.clone(), e);
    }
    pub(crate) fn insert_statistic(&mut self, e: StatisticEntry) {
        self.statistics.insert(e.name.clone(), e);
    }

    fn origin(&self) -> Origin {
        self.current_origin
            .clone()
            .unwrap_or(Origin::Static("builtin".into()))
    }

    fn check_new(&self, kind: &str, name: &str, exists: bool) -> Result<()> {
        if name.is_empty() || name.chars().any(|c| c.is_whitespace()) {
            return Err(Error::Other(format!("invalid {kind} name '{name}'")));
        }
        if exists {
            return Err(Error::Other(format!(
                "a {kind} named '{name}' is already registered"
            )));
        }
        Ok(())
    }

    pub fn add_simulator(
        &mut self,
        name: &str,
        description: &str,
        options: Vec<OptionSpec>,
        build: impl Fn(&serde_json::Value) -> Result<Box<dyn Simulator>> + Send + Sync + 'static,
    ) -> Result<()> {
        self.check_new("simulator", name, self.simulators.contains_key(name))?;
        let e = SimulatorEntry {
            name: name.into(),
            description: description.into(),
            options,
            origin: self.origin(),
            build: Arc::new(build),
        };
        self.simulators.insert(name.into(), e);
        Ok(())
    }

    pub fn add_generator(
        &mut self,
        name: &str,
        description: &str,
        options: Vec<OptionSpec>,
        build: impl Fn(&serde_json::Value, &GeneratorContext) -> Result<Box<dyn Generator>>
            + Send
            + Sync
            + 'static,
        load: impl Fn(&Path, &serde_json::Value, &GeneratorContext) -> Result<Box<dyn Generator>>
            + Send
            + Sync
            + 'static,
    ) -> Result<()> {
        self.check_new("generator", name, self.generators.contains_key(name))?;
        let e = GeneratorEntry {
            name: name.into(),
            description: description.into(),
            options,
            origin: self.origin(),
            build: Arc::new(build),
            load: Arc::new(load),
        };
        self.generators.insert(name.into(), e);
        Ok(())
    }

    pub fn add_statistic(
        &mut self,
        name: &str,
        description: &str,
        options: Vec<OptionSpec>,
        build: impl Fn(&serde_json::Value, &StatContext) -> Result<Box<dyn Statistic>>
            + Send
            + Sync
            + 'static,
    ) -> Result<()> {
        self.check_new("statistic", name, self.statistics.contains_key(name))?;
        let e = StatisticEntry {
            name: name.into(),
            description: description.into(),
            options,
            origin: self.origin(),
            build: Arc::new(build),
        };
        self.statistics.insert(name.into(), e);
        Ok(())
    }

    /// Registers a file format under `format.name()`.
    pub fn add_format(
        &mut self,
        description: &str,
        extensions: &[&str],
        options: Vec<OptionSpec>,
        format: impl Format + 'static,
    ) -> Result<()> {
        let name = format.name().to_string();
        self.check_new("format", &name, self.formats.contains_key(&name))?;
        let e = FormatEntry {
            name: name.clone(),
            description: description.into(),
            extensions: extensions.iter().map(|e| e.to_ascii_lowercase()).collect(),
            options,
            origin: self.origin(),
            format: Arc::new(format),
        };
        self.formats.insert(name, e);
        Ok(())
    }

    /// Moves every entry of `other` into `self`, refusing duplicate names.
    pub(crate) fn absorb(&mut self, other: Registry) -> Result<()> {
        for (n, e) in other.simulators {
            self.check_new("simulator", &n, self.simulators.contains_key(&n))?;
            self.simulators.insert(n, e);
        }
        for (n, e) in other.generators {
            self.check_new("generator", &n, self.generators.contains_key(&n))?;
            self.generators.insert(n, e);
        }
        for (n, e) in other.statistics {
            self.check_new("statistic", &n, self.statistics.contains_key(&n))?;
            self.statistics.insert(n, e);
        }
        for (n, e) in other.formats {
            self.check_new("format", &n, self.formats.contains_key(&n))?;
            self.formats.insert(n, e);
        }
        self.libraries.extend(other.libraries);
        Ok(())
    }

    pub fn simulators(&self) -> impl Iterator<Item = &SimulatorEntry> {
        self.simulators.values()
    }
    pub fn generators(&self) -> impl Iterator<Item = &GeneratorEntry> {
        self.generators.values()
    }
    pub fn statistics(&self) -> impl Iterator<Item = &StatisticEntry> {
        self.statistics.values()
    }

    pub fn formats(&self) -> impl Iterator<Item = &FormatEntry> {
        self.formats.values()
    }

    /// Every registered plugin, as `simemu list --json` prints it: per kind
    /// (`simulators`, `generators`, `statistics`, `formats`), each entry's name,
    /// description, origin and options; simulators also list their parameters,
    /// formats their file extensions after the origin.
    pub fn listing(&self) -> serde_json::Value {
        let entry = |name: &str, description: &str, origin: String, options: &[OptionSpec]| serde_json::json!({"name": name, "description": description, "origin": origin, "options": options});
        let simulators: Vec<_> = self
            .simulators()
            .map(|e| {
                let params = (e.build)(&serde_json::Value::Null)
                    .map(|s| s.params().to_vec())
                    .unwrap_or_default();
                let mut v = entry(&e.name, &e.description, e.origin.to_string(), &e.options);
                v["params"] = serde_json::json!(params);
                v
            })
            .collect();
        let generators: Vec<_> = self
            .generators()
            .map(|e| entry(&e.name, &e.description, e.origin.to_string(), &e.options))
            .collect();
        let statistics: Vec<_> = self
            .statistics()
            .map(|e| entry(&e.name, &e.description, e.origin.to_string(), &e.options))
            .collect();
        let formats: Vec<_> = self
            .formats()
            .map(|e| {
                entry(
                    &e.name,
                    &e.description,
                    e.origin_and_extensions(),
                    &e.options,
                )
            })
            .collect();
        serde_json::json!({
            "simulators": simulators, "generators": generators,
            "statistics": statistics, "formats": formats,
        })
    }

    pub fn format(&self, name: &str) -> Result<&FormatEntry> {
        self.formats
            .get(name)
            .ok_or_else(|| unknown("format", name, self.formats.keys()))
    }

    /// The format whose extension `path` carries (the longest matching extension wins,
    /// so `tar.gz` beats `gz`).
    pub fn format_for_path(&self, path: &Path) -> Result<&FormatEntry> {
        self.formats
            .values()
            .flat_map(|f| f.extensions.iter().map(move |e| (e, f)))
            .filter(|(e, _)| crate::formats::has_extension(path, &[e.as_str()]))
            .max_by_key(|(e, _)| e.len())
            .map(|(_, f)| f)
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .formats
                    .values()
                    .map(|f| format!("{} ({})", f.name, f.extensions.join(", ")))
                    .collect();
                Error::Option(format!(
                    "{}: cannot tell the format from the file name; give --format (formats: {})",
                    path.display(),
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join("; ")
                    }
                ))
            })
    }

    pub fn simulator(&self, name: &str) -> Result<&SimulatorEntry> {
        self.simulators
            .get(name)
            .ok_or_else(|| unknown("simulator", name, self.simulators.keys()))
    }
    pub fn generator(&self, name: &str) -> Result<&GeneratorEntry> {
        self.generators
            .get(name)
            .ok_or_else(|| unknown("generator", name, self.generators.keys()))
    }
    pub fn statistic(&self, name: &str) -> Result<&StatisticEntry> {
        self.statistics
            .get(name)
            .ok_or_else(|| unknown("statistic", name, self.statistics.keys()))
    }

    /// Builds a simulator by name from its options.
    pub fn build_simulator(
        &self,
        name: &str,
        options: &serde_json::Value,
    ) -> Result<Box<dyn Simulator>> {
        (self.simulator(name)?.build)(options)
    }
}

fn unknown<'a>(kind: &str, name: &str, available: impl Iterator<Item = &'a String>) -> Error {
    let names: Vec<&str> = available.map(|s| s.as_str()).collect();
    Error::UnknownPlugin(format!(
        "unknown {kind} '{name}'{}; available: {}",
        did_you_mean(name, &names),
        if names.is_empty() {
            "(none)".to_string()
        } else {
            names.join(", ")
        }
    ))
}
