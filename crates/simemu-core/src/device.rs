//! Which processor a generator computes on: `cpu` or `cuda[:N]`.
//!
//! The choice belongs to the run, not to the model: a checkpoint written on one
//! device loads on any other, so the device is never part of a generator's stored
//! configuration. A generator receives it with its [`GeneratorContext`]; plugins
//! without tensors (a baseline that reruns a simulator) compute where they always
//! do and ignore it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Error, Registry};

/// A compute device as the command line and run configs write it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ComputeDevice {
    /// The host's cores (the default).
    #[default]
    Cpu,
    /// The CUDA GPU with this ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
}

impl ComputeDevice {
    pub fn is_cpu(self) -> bool {
        self == ComputeDevice::Cpu
    }
}

impl fmt::Display for ComputeDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ComputeDevice::Cpu => f.write_str("cpu"),
            ComputeDevice::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl FromStr for ComputeDevice {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let refuse = || {
            Error::Option(format!(
                "device '{s}' is not one of cpu, cuda, cuda:N (N the GPU's ordinal)"
            ))
        };
        match s {
            "cpu" => Ok(ComputeDevice::Cpu),
            "cuda" => Ok(ComputeDevice::Cuda(0)),
            _ => {
                let ordinal = s.strip_prefix("cuda:").ok_or_else(refuse)?;
                // Digits only: `usize::from_str` also takes a leading '+'.
                if ordinal.is_empty() || !ordinal.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(refuse());
                }
                ordinal
                    .parse()
                    .map(ComputeDevice::Cuda)
                    .map_err(|_| refuse())
            }
        }
    }
}

impl Serialize for ComputeDevice {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ComputeDevice {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a generator is built or loaded with besides its configuration: the
/// registry (a generator may use other plugins, say the data's simulator) and the
/// device to compute on.
#[derive(Clone, Copy)]
pub struct GeneratorContext<'a> {
    pub registry: &'a Registry,
    pub device: ComputeDevice,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_parse_as_written_and_print_back() {
        for (text, device, shown) in [
            ("cpu", ComputeDevice::Cpu, "cpu"),
            ("cuda", ComputeDevice::Cuda(0), "cuda:0"),
            ("cuda:0", ComputeDevice::Cuda(0), "cuda:0"),
            ("cuda:3", ComputeDevice::Cuda(3), "cuda:3"),
        ] {
            let parsed: ComputeDevice = text.parse().unwrap();
            assert_eq!(parsed, device);
            assert_eq!(parsed.to_string(), shown);
            assert_eq!(shown.parse::<ComputeDevice>().unwrap(), device);
        }
        for bad in [
            "", "gpu", "CPU", "cuda:", "cuda:+1", "cuda:-1", "cuda:x", "cuda0", "metal",
        ] {
            let e = bad.parse::<ComputeDevice>().unwrap_err();
            assert!(matches!(e, Error::Option(_)), "{bad}: {e}");
            assert!(e.to_string().contains(&format!("'{bad}'")), "{e}");
        }
        let json: ComputeDevice = serde_json::from_str("\"cuda:1\"").unwrap();
        assert_eq!(json, ComputeDevice::Cuda(1));
        assert_eq!(serde_json::to_string(&json).unwrap(), "\"cuda:1\"");
        assert!(serde_json::from_str::<ComputeDevice>("\"tpu\"").is_err());
    }
}
