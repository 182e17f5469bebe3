//! Dynamic plugins: shared libraries loaded at run time with `libloading`.
//!
//! A plugin library exports one C symbol, [`ENTRY_SYMBOL`], returning a pointer to a
//! `#[repr(C)]` [`PluginDeclaration`]. Its first two fields (`magic`, `abi_version`)
//! are frozen forever, so any simemu can read them from any library. The host checks,
//! in order, the magic number, the ABI version, the declaration's size, the rustc
//! version, the simemu-core version, the target triple and a fingerprint of the
//! layouts of the types that cross the boundary — and only when every one matches
//! does it call the Rust-ABI `register` function. Panics inside the plugin are caught
//! on the plugin's side of the boundary and become errors. Libraries are never
//! unloaded: their code backs the registered entries until the process exits.
//!
//! Write a plugin with [`declare_plugin!`](crate::declare_plugin); `plugins/template`
//! is a complete example.

use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::Arc;

use crate::registry::{Origin, Registry};
use crate::sample::{FieldSpec, Sample};
use crate::traits::{
    Generator, PreparedSimulator, Simulator, StatValues, Statistic, TrainOptions, TrainSummary,
};
use crate::{Dataset, Error, ParamSpec, Result};

/// Name of the exported entry symbol.
pub const ENTRY_SYMBOL: &[u8] = b"simemu_plugin_entry\0";
/// "SIMEMU\0\x01": identifies a simemu plugin declaration.
pub const MAGIC: u64 = 0x5349_4d45_4d55_0001;
/// Bumped on any change of the declaration or of the registration protocol.
pub const ABI_VERSION: u32 = 2;

/// NUL-terminated strings baked into every copy of simemu-core, so a plugin carries
/// the values of the compiler and core it was built with.
pub const RUSTC_VERSION_C: &str = concat!(env!("SIMEMU_RUSTC_VERSION"), "\0");
pub const CORE_VERSION_C: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
pub const TARGET_C: &str = concat!(env!("SIMEMU_TARGET"), "\0");

/// Sizes of the types that cross the boundary by Rust ABI, folded into one number:
/// a plugin built against a core whose dependencies changed layout is refused.
pub const LAYOUT_FINGERPRINT: u64 = {
    use std::mem::size_of;
    let sizes = [
        size_of::<Registry>(),
        size_of::<Sample>(),
        size_of::<FieldSpec>(),
        size_of::<ParamSpec>(),
        size_of::<serde_json::Value>(),
        size_of::<Error>(),
        size_of::<Box<dyn Simulator>>(),
        size_of::<TrainOptions>(),
        size_of::<Option<String>>(),
    ];
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < sizes.len() {
        h = (h ^ sizes[i] as u64).wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
};

/// Return codes of `register`.
pub const REGISTER_OK: i32 = 0;
pub const REGISTER_ERROR: i32 = 1;
pub const REGISTER_PANIC: i32 = 2;

/// The declaration a plugin library exports. Fields after `abi_version` may change
/// only together with [`ABI_VERSION`].
#[repr(C)]
pub struct PluginDeclaration {
    pub magic: u64,
    pub abi_version: u32,
    /// `size_of::<PluginDeclaration>()` in the plugin.
    pub decl_size: u32,
    pub rustc_version: *const c_char,
    pub core_version: *const c_char,
    pub target: *const c_char,
    pub layout_fingerprint: u64,
    pub plugin_name: *const c_char,
    /// Rust-ABI registration, called only after every check passed. `registry` is a
    /// `*mut Registry`, `error` a `*mut Option<String>` that receives the message
    /// when the return value is not [`REGISTER_OK`].
    pub register: unsafe extern "C" fn(registry: *mut c_void, error: *mut c_void) -> i32,
}

/// Lets the declaration live in a `static` (it holds raw pointers to static strings).
#[repr(transparent)]
pub struct DeclarationCell(pub PluginDeclaration);
// SAFETY: the declaration only points to immutable 'static data.
unsafe impl Sync for DeclarationCell {}

/// Declares a dynamic plugin: `declare_plugin!("name", register_fn)` where
/// `register_fn: fn(&mut simemu_core::Registry) -> simemu_core::Result<()>`.
/// Build the crate as a `cdylib` and load it with `simemu --plugin path/to/lib.so`.
#[macro_export]
macro_rules! declare_plugin {
    ($name:literal, $register:path) => {
        #[doc(hidden)]
        pub static SIMEMU_PLUGIN_DECLARATION: $crate::plugin::DeclarationCell =
            $crate::plugin::DeclarationCell($crate::plugin::PluginDeclaration {
                magic: $crate::plugin::MAGIC,
                abi_version: $crate::plugin::ABI_VERSION,
                decl_size: ::std::mem::size_of::<$crate::plugin::PluginDeclaration>() as u32,
                rustc_version: $crate::plugin::RUSTC_VERSION_C.as_ptr()
                    as *const ::std::ffi::c_char,
                core_version: $crate::plugin::CORE_VERSION_C.as_ptr() as *const ::std::ffi::c_char,
                target: $crate::plugin::TARGET_C.as_ptr() as *const ::std::ffi::c_char,
                layout_fingerprint: $crate::plugin::LAYOUT_FINGERPRINT,
                plugin_name: concat!($name, "\0").as_ptr() as *const ::std::ffi::c_char,
                register: {
                    unsafe extern "C" fn __simemu_register(
                        registry: *mut ::std::ffi::c_void,
                        error: *mut ::std::ffi::c_void,
                    ) -> i32 {
                        // SAFETY: the host passes a `*mut Registry` and a `*mut Option<String>`,
                        // after checking that both sides agree on their layout.
                        unsafe {
                            $crate::plugin::run_registration($name, $register, registry, error)
                        }
                    }
                    __simemu_register
                },
            });

        /// The entry point simemu looks up.
        #[unsafe(no_mangle)]
        pub extern "C" fn simemu_plugin_entry() -> *const $crate::plugin::PluginDeclaration {
            &SIMEMU_PLUGIN_DECLARATION.0
        }
    };
}

/// Plugin-side body of `register`: runs the plugin's registration into a fresh
/// registry, wraps every entry so that panics become errors, and hands the entries to
/// the host's registry.
///
/// # Safety
/// `registry` must point to a live `Registry` and `error` to a live `Option<String>`
/// of the same layout as this crate's (the host checks this before calling).
pub unsafe fn run_registration(
    name: &str,
    register: fn(&mut Registry) -> Result<()>,
    registry: *mut c_void,
    error: *mut c_void,
) -> i32 {
    let host = unsafe { &mut *(registry as *mut Registry) };
    let error = unsafe { &mut *(error as *mut Option<String>) };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut own = Registry::new();
        own.set_origin(host.current_origin.clone());
        register(&mut own)?;
        host.absorb(guard_registry(name, own))
    }));
    match outcome {
        Ok(Ok(())) => REGISTER_OK,
        Ok(Err(e)) => {
            *error = Some(e.to_string());
            REGISTER_ERROR
        }
        Err(p) => {
            *error = Some(panic_message(&p));
            REGISTER_PANIC
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".into()
    }
}

fn guarded<T>(plugin: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        Err(Error::PluginPanic {
            plugin: plugin.to_string(),
            message: panic_message(&p),
        })
    })
}

/// Wraps every entry of a dynamic plugin's registry so that no panic unwinds out of
/// plugin code.
fn guard_registry(plugin: &str, own: Registry) -> Registry {
    let mut out = Registry::new();
    let p: Arc<str> = Arc::from(plugin);
    for e in own.simulators() {
        let mut e = e.clone();
        let (b, p) = (e.build.clone(), p.clone());
        e.build = Arc::new(move |o| {
            guarded(&p, || b(o)).map(|s| {
                Box::new(GuardedSimulator {
                    inner: s,
                    plugin: p.clone(),
                }) as Box<dyn Simulator>
            })
        });
        out.insert_simulator(e);
    }
    for e in own.statistics() {
        let mut e = e.clone();
        let (b, p) = (e.build.clone(), p.clone());
        e.build = Arc::new(move |o, ctx| {
            guarded(&p, || b(o, ctx)).map(|s| {
                Box::new(GuardedStatistic {
                    inner: s,
                    plugin: p.clone(),
                }) as Box<dyn Statistic>
            })
        });
        out.insert_statistic(e);
    }
    for e in own.generators() {
        let mut e = e.clone();
        let (b, l, p1, p2) = (e.build.clone(), e.load.clone(), p.clone(), p.clone());
        e.build = Arc::new(move |o, r| {
            guarded(&p1, || b(o, r)).map(|g| {
                Box::new(GuardedGenerator {
                    inner: g,
                    plugin: p1.clone(),
                }) as Box<dyn Generator>
            })
        });
        e.load = Arc::new(move |path, o, r| {
            guarded(&p2, || l(path, o, r)).map(|g| {
                Box::new(GuardedGenerator {
                    inner: g,
                    plugin: p2.clone(),
                }) as Box<dyn Generator>
            })
        });
        out.insert_generator(e);
    }
    out
}

struct GuardedSimulator {
    inner: Box<dyn Simulator>,
    plugin: Arc<str>,
}

impl Simulator for GuardedSimulator {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn params(&self) -> &[ParamSpec] {
        self.inner.params()
    }
    fn fields(&self) -> Vec<FieldSpec> {
        self.inner.fields()
    }
    fn config(&self) -> serde_json::Value {
        self.inner.config()
    }
    fn prepare(&self, params: &[f64]) -> Result<Box<dyn PreparedSimulator>> {
        let p = self.plugin.clone();
        guarded(&self.plugin, || self.inner.prepare(params)).map(|inner| {
            Box::new(GuardedPrepared { inner, plugin: p }) as Box<dyn PreparedSimulator>
        })
    }
    fn theory(
        &self,
        params: &[f64],
        query: &std::collections::BTreeMap<String, Vec<f64>>,
    ) -> Result<serde_json::Value> {
        guarded(&self.plugin, || self.inner.theory(params, query))
    }
}

struct GuardedPrepared {
    inner: Box<dyn PreparedSimulator>,
    plugin: Arc<str>,
}

impl PreparedSimulator for GuardedPrepared {
    fn simulate(&self, seed: u64) -> Result<Sample> {
        guarded(&self.plugin, || self.inner.simulate(seed))
    }
    fn notes(&self) -> serde_json::Value {
        self.inner.notes()
    }
}

struct GuardedStatistic {
    inner: Box<dyn Statistic>,
    plugin: Arc<str>,
}

impl Statistic for GuardedStatistic {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn x_name(&self) -> &str {
        self.inner.x_name()
    }
    fn x(&self) -> &[f64] {
        self.inner.x()
    }
    fn components(&self) -> Vec<String> {
        self.inner.components()
    }
    fn options(&self) -> serde_json::Value {
        self.inner.options()
    }
    fn compute(&self, sample: &Sample) -> Result<StatValues> {
        guarded(&self.plugin, || self.inner.compute(sample))
    }
}

struct GuardedGenerator {
    inner: Box<dyn Generator>,
    plugin: Arc<str>,
}

impl Generator for GuardedGenerator {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn config(&self) -> serde_json::Value {
        self.inner.config()
    }
    fn fields(&self) -> Vec<FieldSpec> {
        self.inner.fields()
    }
    fn params(&self) -> Vec<ParamSpec> {
        self.inner.params()
    }
    fn train(
        &mut self,
        data: &Dataset,
        options: &TrainOptions,
        registry: &Registry,
    ) -> Result<TrainSummary> {
        let plugin = self.plugin.clone();
        guarded(&plugin, || self.inner.train(data, options, registry))
    }
    fn save(&self, dir: &Path) -> Result<()> {
        guarded(&self.plugin, || self.inner.save(dir))
    }
    fn generate(&self, params: &[f64], seeds: &[u64]) -> Result<Vec<Sample>> {
        guarded(&self.plugin, || self.inner.generate(params, seeds))
    }
    fn cost_per_sample(&self) -> Option<f64> {
        self.inner.cost_per_sample()
    }
}

fn c_str(p: *const c_char) -> String {
    if p.is_null() {
        return "<null>".into();
    }
    // SAFETY: checked non-null; the plugin declares NUL-terminated static strings.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// The first bytes of a shared library on this platform.
fn is_shared_library(head: &[u8]) -> bool {
    if cfg!(target_os = "windows") {
        head.starts_with(b"MZ")
    } else if cfg!(target_os = "macos") {
        [
            [0xcf, 0xfa, 0xed, 0xfe],
            [0xfe, 0xed, 0xfa, 0xcf],
            [0xca, 0xfe, 0xba, 0xbe],
        ]
        .iter()
        .any(|m| head.starts_with(m))
    } else {
        head.starts_with(b"\x7fELF")
    }
}

/// What can be checked of a plugin library before it is loaded (loading runs
/// its initialisers, which no check can stop): a regular file, a shared library
/// of this platform, naming the entry symbol.
fn check_before_loading(path: &Path) -> std::result::Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("not a file".into());
    }
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    if !is_shared_library(&bytes) {
        return Err("not a shared library of this platform".into());
    }
    let name = &ENTRY_SYMBOL[..ENTRY_SYMBOL.len() - 1];
    if !bytes.windows(name.len()).any(|w| w == name) {
        return Err("not a simemu plugin (no 'simemu_plugin_entry' symbol)".into());
    }
    Ok(())
}

impl Registry {
    /// Loads a plugin library and registers its entries. Every compatibility check
    /// happens before any Rust-ABI function of the library is called; a refused
    /// library leaves the registry unchanged.
    ///
    /// Loading a library runs its initialisers (constructors) before simemu can
    /// read its declaration, so a library refused for its ABI has already run
    /// them: load only libraries you trust. What can be checked without loading
    /// is checked first: a regular file, a shared library of this platform, one
    /// that names the entry symbol.
    pub fn load_dynamic(&mut self, path: &Path) -> Result<()> {
        let shown = path.display().to_string();
        let refuse = |m: String| Error::PluginRefused(format!("{shown}: {m}"));
        check_before_loading(path).map_err(refuse)?;
        // SAFETY: loading runs the library's initialisers; simemu plugins are trusted
        // code the user named explicitly on the command line.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| refuse(format!("cannot load library: {e}")))?;
        // SAFETY: the symbol is declared `extern "C" fn() -> *const PluginDeclaration`.
        let decl_ptr = unsafe {
            let entry: libloading::Symbol<unsafe extern "C" fn() -> *const PluginDeclaration> =
                lib.get(ENTRY_SYMBOL).map_err(|_| {
                    refuse("not a simemu plugin (no 'simemu_plugin_entry' symbol)".into())
                })?;
            entry()
        };
        if decl_ptr.is_null() {
            return Err(refuse("the plugin's declaration is null".into()));
        }
        // SAFETY: the frozen prefix (magic, abi_version) has the same layout in every
        // version; the rest is read only after those match.
        let decl = unsafe { &*decl_ptr };
        if decl.magic != MAGIC {
            return Err(refuse(format!(
                "wrong magic number {:#018x} (expected {MAGIC:#018x}): not a simemu plugin",
                decl.magic
            )));
        }
        if decl.abi_version != ABI_VERSION {
            return Err(refuse(format!(
                "plugin ABI version {} but this simemu speaks version {ABI_VERSION}; rebuild the plugin against this simemu",
                decl.abi_version
            )));
        }
        let checks = [
            (
                "declaration size",
                decl.decl_size.to_string(),
                (std::mem::size_of::<PluginDeclaration>()).to_string(),
            ),
            (
                "rustc version",
                c_str(decl.rustc_version),
                RUSTC_VERSION_C.trim_end_matches('\0').to_string(),
            ),
            (
                "simemu-core version",
                c_str(decl.core_version),
                CORE_VERSION_C.trim_end_matches('\0').to_string(),
            ),
            (
                "target",
                c_str(decl.target),
                TARGET_C.trim_end_matches('\0').to_string(),
            ),
            (
                "type layout fingerprint",
                format!("{:#x}", decl.layout_fingerprint),
                format!("{LAYOUT_FINGERPRINT:#x}"),
            ),
        ];
        for (what, theirs, ours) in checks {
            if theirs != ours {
                return Err(refuse(format!(
                    "{what} differs: plugin built with '{theirs}', this simemu with '{ours}'; rebuild the plugin with the same toolchain and simemu"
                )));
            }
        }
        let plugin = c_str(decl.plugin_name);
        let lib = Arc::new(lib);
        let mut staged = Registry::new();
        staged.current_origin = Some(Origin::Dynamic {
            plugin: plugin.clone(),
            path: shown.clone(),
        });
        let mut error: Option<String> = None;
        // SAFETY: every layout check passed; `staged` and `error` outlive the call.
        let code = unsafe {
            (decl.register)(
                &mut staged as *mut Registry as *mut c_void,
                &mut error as *mut Option<String> as *mut c_void,
            )
        };
        match code {
            REGISTER_OK => {
                staged.libraries.push(lib);
                staged.current_origin = None;
                self.absorb(staged)
            }
            REGISTER_PANIC => Err(Error::PluginPanic {
                plugin,
                message: error.unwrap_or_default(),
            }),
            _ => Err(refuse(format!(
                "registration of plugin '{plugin}' failed: {}",
                error.unwrap_or_else(|| "no message".into())
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DType, FieldSpec};

    struct Exploding;

    impl Simulator for Exploding {
        fn name(&self) -> &str {
            "exploding"
        }
        fn params(&self) -> &[ParamSpec] {
            &[]
        }
        fn fields(&self) -> Vec<FieldSpec> {
            vec![FieldSpec::new("x", vec![1], DType::F32)]
        }
        fn config(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
        fn prepare(&self, _: &[f64]) -> Result<Box<dyn PreparedSimulator>> {
            panic!("boom in prepare")
        }
    }

    fn register_exploding(r: &mut Registry) -> Result<()> {
        r.add_simulator("exploding", "panics", vec![], |_| {
            Ok(Box::new(Exploding) as Box<dyn Simulator>)
        })
    }

    fn register_panicking(_: &mut Registry) -> Result<()> {
        panic!("boom in register")
    }

    #[test]
    fn panics_inside_a_plugin_become_errors() {
        let mut host = Registry::new();
        let mut error: Option<String> = None;
        let code = unsafe {
            run_registration(
                "bad",
                register_exploding,
                &mut host as *mut Registry as *mut c_void,
                &mut error as *mut Option<String> as *mut c_void,
            )
        };
        assert_eq!(code, REGISTER_OK);
        let sim = host
            .build_simulator("exploding", &serde_json::Value::Null)
            .unwrap();
        match sim.prepare(&[]) {
            Err(Error::PluginPanic { plugin, message }) => assert_eq!(
                (plugin.as_str(), message.as_str()),
                ("bad", "boom in prepare")
            ),
            other => panic!("expected a plugin panic error, got {:?}", other.err()),
        }
        let code = unsafe {
            run_registration(
                "worse",
                register_panicking,
                &mut host as *mut Registry as *mut c_void,
                &mut error as *mut Option<String> as *mut c_void,
            )
        };
        assert_eq!(code, REGISTER_PANIC);
        assert_eq!(error.as_deref(), Some("boom in register"));
    }
}
