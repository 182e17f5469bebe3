//! The statically linked plugins. Every plugin crate must be named here: a crate that
//! is only listed in Cargo.toml is dropped by the linker and its `inventory`
//! registrations silently vanish (a test asserts the expected names).

use simemu_baselines as _;
use simemu_calorimeter as _;
use simemu_convergence as _;
use simemu_dcgan as _;
use simemu_density3d as _;
use simemu_io as _;
use simemu_map_stats as _;

#[cfg(test)]
mod tests {
    /// A plugin crate that is not force-linked vanishes silently: assert the names.
    #[test]
    fn every_static_plugin_is_registered() {
        let r = simemu_core::Registry::with_static_plugins().unwrap();
        let names = |it: Vec<&str>| it.join(",");
        assert_eq!(
            names(r.simulators().map(|e| e.name.as_str()).collect()),
            "calorimeter,convergence,density3d"
        );
        assert_eq!(
            names(r.generators().map(|e| e.name.as_str()).collect()),
            "dcgan,gaussian-field,shower-gan,simulator"
        );
        assert_eq!(
            names(r.statistics().map(|e| e.name.as_str()).collect()),
            "bispectrum,density-pdf,energy-response,hlf-centroid,hlf-classifier-high,hlf-classifier-low,hlf-layer-energy,hlf-radial,hlf-response,hlf-sparsity,hlf-width,hottest-cells,lateral-width,layer-fractions,minkowski,minkowski-3d,peaks,peaks-3d,pixel-pdf,power-spectrum,power-spectrum-3d,shower-depth,sparsity"
        );
        let formats = if cfg!(feature = "hdf5") {
            "calochallenge,calogan,fits,npy,npz"
        } else {
            "fits,npy,npz"
        };
        assert_eq!(
            names(r.formats().map(|e| e.name.as_str()).collect()),
            formats
        );
    }
}
