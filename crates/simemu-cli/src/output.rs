//! Standard output that survives a closed pipe or a full disk: `simemu list |
//! head -1` ends quietly with exit 0 once the reader has gone, as ripgrep and
//! other Unix tools do, and a failing write (`> /dev/full`) is an error with
//! exit 1, never a panic.

use std::io::Write;

/// Writes `args` to standard output, flushed. A closed pipe ends the process
/// quietly (exit 0); any other failure ends it with the error and exit 1.
pub fn emit(args: std::fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// `print!` through [`emit`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::emit(format_args!($($arg)*))
    };
}

/// `println!` through [`emit`].
macro_rules! outln {
    () => {
        $crate::output::emit(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::emit(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};
