//! `attrfs completions SHELL` and `attrfs man [SUBCOMMAND]`: shell
//! completions and roff man pages generated from the clap definitions, so
//! that they say exactly what `--help` says. The Nix package installs both.

use clap::{Command, ValueEnum};
use std::io::Write;
use std::process::ExitCode;

/// The shells `attrfs completions` writes for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// bash (`/share/bash-completion/completions/attrfs`).
    Bash,
    /// zsh (`/share/zsh/site-functions/_attrfs`).
    Zsh,
    /// fish (`/share/fish/vendor_completions.d/attrfs.fish`).
    Fish,
}

/// Writes the completion script for `shell` to stdout.
pub fn completions(cli: Command, shell: Shell) -> ExitCode {
    let mut cli = without_hidden_subcommands(cli);
    let mut out = Vec::new();
    let name = cli.get_name().to_string();
    match shell {
        Shell::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut cli, name, &mut out)
        }
        Shell::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cli, name, &mut out),
        Shell::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut cli, name, &mut out)
        }
    }
    write_stdout(&out)
}

/// Writes the man page of `attrfs` (no subcommand: `attrfs.1`) or of one
/// subcommand (`attrfs-mount.1`, ...) to stdout.
pub fn man(cli: Command, subcommand: Option<&str>) -> ExitCode {
    let page = match subcommand {
        None => cli,
        Some(name) => match cli
            .get_subcommands()
            .find(|s| s.get_name() == name && !s.is_hide_set())
        {
            Some(sub) => {
                let title = format!("{}-{name}", cli.get_name());
                sub.clone().name(title)
            }
            None => {
                eprintln!("error: no subcommand '{name}' (mount, eval, umount, completions, man)");
                return ExitCode::from(2);
            }
        },
    };
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(page).render(&mut out) {
        eprintln!("error: rendering the man page: {e}");
        return ExitCode::FAILURE;
    }
    write_stdout(&out)
}

/// The command with its hidden (internal) subcommands left out, which
/// clap_complete would otherwise offer; the top level has no arguments of
/// its own beyond `--help` and `--version`.
fn without_hidden_subcommands(cli: Command) -> Command {
    let visible: Vec<Command> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .cloned()
        .collect();
    let mut out = Command::new(cli.get_name().to_string()).subcommands(visible);
    if let Some(version) = cli.get_version() {
        out = out.version(version.to_string());
    }
    if let Some(about) = cli.get_about() {
        out = out.about(about.clone());
    }
    out
}

fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed pipe (`attrfs man | head`) is not worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            ExitCode::FAILURE
        }
    }
}
