//! Command-line words before clap reads them.
//!
//! `simemu theory NAME --ell 300,1000` ends in simulator-defined queries: a
//! trailing argument list, which takes every word after its first one — also
//! `--json` or `--seed 3` written after the queries. [`hoist_flags`] moves
//! simemu's own flags (global ones and the command's) in front of the queries,
//! where clap reads them, so that they work in any position. Queries therefore
//! cannot be named like one of simemu's flags.

use std::ffi::OsString;

use clap::{CommandFactory, FromArgMatches};

/// A flag as written: its spellings and whether a value follows it.
struct Flag {
    long: Option<String>,
    short: Option<char>,
    takes_value: bool,
}

impl Flag {
    fn of(arg: &clap::Arg) -> Option<Flag> {
        if arg.is_positional() {
            return None;
        }
        Some(Flag {
            long: arg.get_long().map(str::to_string),
            short: arg.get_short(),
            takes_value: arg.get_action().takes_values(),
        })
    }
}

/// How many words, from `word` on, one of `flags` takes (0: it is not one):
/// `--seed 3` 2, `--seed=3` and `-vq` 1.
fn flag_words(flags: &[Flag], word: &str, has_next: bool) -> usize {
    if let Some(long) = word.strip_prefix("--") {
        let (name, inline) = match long.split_once('=') {
            Some((n, _)) => (n, true),
            None => (long, false),
        };
        return match flags.iter().find(|f| f.long.as_deref() == Some(name)) {
            Some(f) if f.takes_value && !inline && has_next => 2,
            Some(_) => 1,
            None => 0,
        };
    }
    let Some(shorts) = word.strip_prefix('-') else {
        return 0;
    };
    let known = |c: char| flags.iter().find(|f| f.short == Some(c));
    match shorts.chars().map(known).collect::<Option<Vec<_>>>() {
        Some(found) if !found.is_empty() => match found.last() {
            Some(f) if f.takes_value && has_next => 2,
            _ => 1,
        },
        _ => 0,
    }
}

/// The command line, parsed: the process's words with [`hoist_flags`] applied,
/// matched against the one command it built (clap exits with its message on
/// an error, as `Cli::parse` does).
pub fn parse() -> crate::Cli {
    let mut cli = crate::Cli::command();
    cli.build();
    let args = hoist_flags(&cli, std::env::args_os().collect());
    let matches = cli.get_matches_from(args);
    crate::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// `args` (program name first) with the flags that follow a trailing argument
/// list moved in front of it; `cli` is simemu's command, built.
pub fn hoist_flags(cli: &clap::Command, args: Vec<OsString>) -> Vec<OsString> {
    let globals: Vec<Flag> = cli.get_arguments().filter_map(Flag::of).collect();
    // The command: the first word that is neither a global flag nor its value.
    let mut i = 1;
    while i < args.len() {
        let Some(word) = args[i].to_str() else {
            return args;
        };
        match flag_words(&globals, word, i + 1 < args.len()) {
            0 => break,
            n => i += n,
        }
    }
    let Some(command) = args
        .get(i)
        .and_then(|w| w.to_str())
        .and_then(|w| cli.find_subcommand(w))
    else {
        return args;
    };
    if !command.get_arguments().any(|a| a.is_trailing_var_arg_set()) {
        return args;
    }
    let mut flags: Vec<Flag> = command.get_arguments().filter_map(Flag::of).collect();
    flags.extend(globals);
    let (mut moved, mut rest) = (Vec::new(), Vec::new());
    let mut k = i + 1;
    while k < args.len() {
        let n = match args[k].to_str() {
            Some("--") => {
                rest.extend(args[k..].iter().cloned());
                break;
            }
            Some(word) => flag_words(&flags, word, k + 1 < args.len()),
            None => 0,
        };
        if n == 0 {
            rest.push(args[k].clone());
            k += 1;
        } else {
            moved.extend(args[k..k + n].iter().cloned());
            k += n;
        }
    }
    let mut out: Vec<OsString> = args[..=i].to_vec();
    out.extend(moved);
    out.extend(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::hoist_flags;

    fn hoisted(line: &str) -> String {
        let args = line.split(' ').map(Into::into).collect();
        let mut cli = <crate::Cli as clap::CommandFactory>::command();
        cli.build();
        let out: Vec<String> = hoist_flags(&cli, args)
            .into_iter()
            .map(|w| w.into_string().unwrap())
            .collect();
        out.join(" ")
    }

    #[test]
    fn flags_after_trailing_queries_move_in_front_of_them() {
        assert_eq!(
            hoisted("simemu theory convergence --ell 300,1000 --json"),
            "simemu theory --json convergence --ell 300,1000"
        );
        assert_eq!(
            hoisted(
                "simemu --seed 2 theory convergence --ell 300 -q --param omega_m=0.3 --threads=1"
            ),
            "simemu --seed 2 theory -q --param omega_m=0.3 --threads=1 convergence --ell 300"
        );
        // Negative query values are not flags; commands without trailing
        // arguments are left alone.
        assert_eq!(
            hoisted("simemu theory convergence --z -1 -v"),
            "simemu theory -v convergence --z -1"
        );
        let untouched = "simemu stat power-spectrum --angle-deg -2 --json";
        assert_eq!(hoisted(untouched), untouched);
    }
}
