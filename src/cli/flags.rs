//! The CLI's side of "no option is silently ignored": flags given on the command line that the
//! chosen SDE or mode does not read are errors naming them (a sampler's flags are refused by
//! the sample task itself); library parameter names in errors become flag names.

use crate::{Cli, Cmd};
use clap::{Args, CommandFactory, ValueEnum};
use scoresde::sde::SdeSpec;
use scoresde::{Error, Result};

/// Library errors name parameters in backticks (`` `step_size` ``); the CLI names its flags
/// (`--step-size`).
pub(crate) fn flag_names(e: Error) -> Error {
    match e {
        Error::Invalid(m) => Error::Invalid(backticks_to_flags(&m)),
        e => e,
    }
}

fn backticks_to_flags(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    let mut parts = m.split('`');
    out.push_str(parts.next().unwrap_or_default());
    let mut inside = true;
    for p in parts {
        let ident = !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if inside && ident {
            out.push_str("--");
            out.push_str(&p.replace('_', "-"));
        } else {
            if inside {
                out.push('`');
            }
            out.push_str(p);
            if inside {
                out.push('`');
            }
        }
        inside = !inside;
    }
    out
}

/// Flags given on the command line among `candidates` (clap ids = field names) that the chosen
/// configuration does not `read`: one error naming them, never a silent no-op.
fn refuse_unread(
    m: &clap::ArgMatches,
    cmd: &clap::Command,
    candidates: &[&str],
    read: &[&str],
    what: &str,
) -> Result<()> {
    let flag = |id: &str| {
        cmd.get_arguments()
            .find(|a| a.get_id() == id)
            .and_then(|a| a.get_long())
            .map_or(id.to_string(), |l| format!("--{l}"))
    };
    let given = |id: &str| {
        matches!(
            m.try_get_raw(id).ok().and(m.value_source(id)),
            Some(clap::parser::ValueSource::CommandLine)
        )
    };
    let unread: Vec<String> = candidates
        .iter()
        .filter(|id| given(id) && !read.contains(id))
        .map(|id| flag(id))
        .collect();
    if unread.is_empty() {
        return Ok(());
    }
    let reads: Vec<String> = read
        .iter()
        .filter(|id| candidates.contains(id))
        .map(|id| flag(id))
        .collect();
    Err(scoresde::error::not_applicable(&unread, what, &reads))
}

/// The ids of a flattened clap argument group.
fn ids_of<A: Args>() -> Vec<String> {
    A::augment_args(clap::Command::new("x"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect()
}

fn value_name(v: impl ValueEnum) -> String {
    v.to_possible_value()
        .map_or(String::new(), |p| p.get_name().to_string())
}

/// Options that a chosen sampler, SDE or mode does not read are errors.
pub(crate) fn refuse_unread_flags(cli: &Cli, matches: &clap::ArgMatches) -> Result<()> {
    let Some((name, m)) = matches.subcommand() else {
        return Ok(());
    };
    let root = Cli::command();
    let cmd = root.find_subcommand(name).expect("parsed subcommand");
    let sde_owned = ids_of::<SdeSpec>();
    let sde_ids: Vec<&str> = sde_owned.iter().map(String::as_str).collect();
    let sde_fields: Vec<&str> = sde_ids.iter().copied().filter(|&i| i != "kind").collect();
    let check_sde = |spec: &SdeSpec, model: bool| -> Result<()> {
        if model {
            refuse_unread(
                m,
                cmd,
                &sde_ids,
                &[],
                "--model (a run samples with its own SDE)",
            )
        } else {
            refuse_unread(
                m,
                cmd,
                &sde_fields,
                spec.reads(),
                &format!("--sde {}", value_name(spec.kind)),
            )
        }
    };
    match &cli.cmd {
        Cmd::Sample(a) => {
            // The sampler's own flags are checked by the task (each sampler has its settings).
            // With --model, a path other than the run's is a post-hoc path change.
            check_sde(&a.sde, false)?;
            if a.model.is_some() {
                refuse_unread(
                    m,
                    cmd,
                    &["data"],
                    &[],
                    "--model (a run samples its own model; `scoresde eval` compares with data)",
                )?;
            }
        }
        Cmd::Elbo(a) => {
            check_sde(&a.model.sde, a.model.model.is_some())?;
            let (read, mode): (&[&str], &str) = if a.continuous {
                (&["draws", "sampling", "eps"], "--continuous")
            } else {
                (
                    &["steps", "variance"],
                    "the discrete bound (without --continuous)",
                )
            };
            refuse_unread(
                m,
                cmd,
                &["draws", "sampling", "eps", "steps", "variance"],
                read,
                mode,
            )?;
        }
        Cmd::Nll(a) => {
            check_sde(&a.model.sde, a.model.model.is_some())?;
            if a.points.is_some() {
                refuse_unread(
                    m,
                    cmd,
                    &["n"],
                    &[],
                    "--points (the points are read, not drawn)",
                )?;
            }
        }
        _ => {}
    }
    Ok(())
}
