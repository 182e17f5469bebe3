//! The pipeline's errors: the core's, the requests that cannot be done as asked,
//! and what the pipeline was doing when either happened.

/// An error of a pipeline stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request itself is wrong (a bad config, a missing checkpoint, an
    /// output that exists): the caller's to fix, as an unknown option is.
    #[error("{0}")]
    Request(String),
    #[error(transparent)]
    Core(#[from] simemu_core::Error),
    /// What failed inside `source`.
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The error and its causes on one line, `outer: inner: …`.
    pub fn with_causes(&self) -> String {
        let mut s = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cause = c.source();
        }
        s
    }

    /// Whether the error lies in the request rather than in doing it: a
    /// [`Error::Request`], or a core error about a plugin, option or parameter
    /// named in it.
    pub fn is_request_error(&self) -> bool {
        use simemu_core::Error as E;
        match self {
            Error::Request(_) => true,
            Error::Core(E::UnknownPlugin(_) | E::Option(_) | E::Parameter(_) | E::Refused(_)) => {
                true
            }
            Error::Core(_) => false,
            Error::Context { source, .. } => source.is_request_error(),
        }
    }
}

/// A request error.
pub(crate) fn request(message: impl Into<String>) -> Error {
    Error::Request(message.into())
}

/// An I/O error at `path`.
pub(crate) fn io(path: &std::path::Path, e: std::io::Error) -> Error {
    Error::Core(simemu_core::Error::io(path, e))
}

/// Says what was being done when an error happened.
pub trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;
    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context.into(),
            source: Box::new(e.into()),
        })
    }

    fn with_context<S: Into<String>>(self, context: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::Context {
            context: context().into(),
            source: Box::new(e.into()),
        })
    }
}
