use std::path::PathBuf;

/// Every failure the core and the plugins report. Messages name the file, sample,
/// parameter or option at fault so that a user can act on them without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("invalid parameter: {0}")]
    Parameter(String),
    #[error("invalid option: {0}")]
    Option(String),
    #[error("invalid data: {0}")]
    Data(String),
    #[error("{0}")]
    UnknownPlugin(String),
    #[error("plugin refused: {0}")]
    PluginRefused(String),
    #[error("plugin '{plugin}' panicked: {message}")]
    PluginPanic { plugin: String, message: String },
    /// What the caller asked for would replace, escape or overrun what it must
    /// not (an output that exists or is not simemu's, a path outside its folder,
    /// a size the machine cannot hold): the request's to change.
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Other(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn bad_file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::BadFile {
            path: path.into(),
            message: message.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
