//! `attrfs`: mount an evaluated Nix expression as a read-only filesystem.
//!
//! Three subcommands: `mount` (foreground FUSE daemon), `eval` (like
//! `nix-instantiate --eval`, in [`eval_cmd`]) and `umount`.

mod allocator;
mod answer_cache;
mod eval_cmd;
mod fuse;
mod live;
mod manual;
mod mount;
mod mount_helper;
mod source;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use attrfs_eval::{Invocation, InvocationArgs, InvocationError};
use clap::{Args, CommandFactory, Parser, Subcommand};

/// The evaluator allocates many small, short-lived objects; mimalloc is
/// markedly faster at that than glibc's per-thread arenas (called as in
/// `allocator.rs`).
#[global_allocator]
static GLOBAL: allocator::MiMalloc = allocator::MiMalloc;

/// Asks the kernel for no transparent huge pages in this process.
///
/// mimalloc `madvise`s its arenas for huge pages, so the first touch of each
/// 2 MiB region faults in and zeroes all of it. The evaluator's heap grows
/// steadily while it evaluates, so that zeroing is paid up front in big
/// steps: forcing every nixpkgs 20.09 attribute spent about 30% of its time
/// in `clear_page_erms` (measured with perf on a 2-core VM), and took 9.7 to
/// 11 s with huge pages against 7.5 s and 5% less peak memory without;
/// `hello.drvPath` peaks at 85 instead of 106 MiB. Called first thing, before
/// the evaluator's heap exists; if the kernel refuses, nothing is lost but
/// that speed.
fn disable_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and touches
    // no memory of ours.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// The hidden subcommand that runs an evaluator worker.
pub const WORKER_SUBCOMMAND: &str = "__worker";

/// Mount an evaluated Nix expression as a read-only filesystem.
#[derive(Parser, Debug)]
#[command(name = "attrfs", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Evaluate an expression and mount it (runs in the foreground).
    Mount(MountArgs),
    /// Evaluate an expression and print it, like `nix-instantiate --eval`.
    Eval(EvalArgs),
    /// Unmount an attrfs mount.
    Umount(UmountArgs),
    /// Print shell completions (bash, zsh or fish) to stdout.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: manual::Shell,
    },
    /// Print the man page (roff) of attrfs, or of one subcommand, to stdout.
    Man {
        /// `mount`, `eval`, `umount`, ... (default: the page of attrfs).
        subcommand: Option<String>,
    },
    /// Internal: started by `attrfs mount`, waits for it to exit and
    /// unmounts if it died without doing so.
    #[command(name = "__reap-mount", hide = true)]
    ReapMount(ReapArgs),
    /// Internal: started by `attrfs mount`, evaluates in a process of its
    /// own and answers the daemon's requests over stdin and stdout.
    #[command(name = WORKER_SUBCOMMAND, hide = true)]
    Worker,
}

/// Arguments of `attrfs mount`.
#[derive(Args, Debug, Clone)]
#[command(override_usage = "attrfs mount [OPTIONS] [FILE | -E EXPR] MOUNTPOINT")]
pub struct MountArgs {
    /// `[FILE] MOUNTPOINT`: the Nix file to evaluate (default `./default.nix`;
    /// a directory means its `default.nix`) and the empty directory to mount
    /// it on.
    #[arg(value_name = "FILE MOUNTPOINT", num_args = 1..=2, required = true)]
    pub paths: Vec<PathBuf>,
    /// What to evaluate (shared with `attrfs eval`).
    #[command(flatten)]
    pub source: SourceArgs,
    /// Fail a filesystem request whose evaluation takes longer than this
    /// (the evaluation is interrupted and the request gets EIO).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub eval_timeout: f64,
    /// How many files' contents to keep cached.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub cache_size: usize,
    /// How many evaluator worker processes serve requests. With more than
    /// one, a request does not wait behind a long evaluation; each worker
    /// evaluates its own copy of what it is asked (memory and CPU grow
    /// with N).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub workers: usize,
    /// Show derivations inside derivations as directories instead of
    /// symlinks to their output paths.
    #[arg(long)]
    pub deep_derivations: bool,
    /// Do not watch the files the evaluation read: the mount shows the
    /// values of the moment they were first asked for, until remounted.
    /// (By default an edit of a source makes a new generation: `cat` shows
    /// the new value within a second.)
    #[arg(long)]
    pub no_watch: bool,
    /// Do not list subdirectories ahead of being asked: by default, when a
    /// directory below the root is listed, its subdirectories are
    /// evaluated in the background while nothing else is asked, so that a
    /// walk (`find`, `grep -r`, `ls -R`) finds them ready.
    #[arg(long)]
    pub no_read_ahead: bool,
    /// Do not use the persistent cache (`$XDG_CACHE_HOME/attrfs/answers`):
    /// neither answer from what an earlier mount of the same expression
    /// stored nor store anything.
    #[arg(long)]
    pub no_cache: bool,
    /// Bound on the persistent cache's size on disk, all mounts together
    /// (`512M`, `2G`, or bytes): the least recently used are evicted.
    #[arg(long, value_name = "SIZE", default_value = "2G", value_parser = parse_size)]
    pub cache_max: u64,
    /// Extra mount options (comma-separated, repeatable): `allow_other`,
    /// `allow_root`, `noexec`, `noatime`, `fsname=NAME`, ...
    #[arg(short = 'o', value_name = "FUSE_OPTION")]
    pub options: Vec<String>,
    /// With --flake: allow impure evaluation (`currentSystem`, `getEnv`,
    /// `NIX_PATH`, unlocked fetches).
    #[arg(long)]
    pub impure: bool,
    /// Parse and compile every file afresh instead of loading unchanged
    /// ones from the compiled-file cache (also ATTRFS_NO_COMPILE_CACHE=1).
    #[arg(long)]
    pub no_compile_cache: bool,
    /// Mount the built-in test tree instead of a Nix expression (for
    /// attrfs's own tests).
    #[arg(long, hide = true)]
    pub fake_tree: bool,
}

impl MountArgs {
    /// The file to evaluate, if one was given (`[FILE] MOUNTPOINT`).
    pub fn file(&self) -> Option<&PathBuf> {
        match self.paths.as_slice() {
            [file, _] => Some(file),
            _ => None,
        }
    }

    /// The mountpoint (always the last positional argument).
    pub fn mountpoint(&self) -> &PathBuf {
        // clap guarantees one or two values.
        &self.paths[self.paths.len() - 1]
    }

    /// What to evaluate, or why the arguments do not say.
    pub fn invocation(&self) -> Result<Invocation, InvocationError> {
        self.source.invocation(self.file().cloned(), self.impure)
    }
}

/// What to evaluate: the arguments `attrfs eval` and `attrfs mount` share,
/// checked and turned into one [`Invocation`] for both.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Evaluate this expression instead of a file.
    #[arg(short = 'E', long = "expr", value_name = "EXPR")]
    pub expr: Vec<String>,
    /// Select this attribute path of the value (repeatable: each is
    /// applied to the result of the previous one).
    #[arg(short = 'A', long = "attr", value_name = "ATTRPATH")]
    pub attr: Vec<String>,
    /// Pass NAME = EXPR to the root function.
    #[arg(long = "arg", num_args = 2, value_names = ["NAME", "EXPR"])]
    pub arg: Vec<String>,
    /// Pass NAME = the string STR to the root function.
    #[arg(long = "argstr", num_args = 2, value_names = ["NAME", "STR"])]
    pub argstr: Vec<String>,
    /// Add a search path entry (`PATH` or `name=PATH`), before `NIX_PATH`.
    #[arg(short = 'I', value_name = "PATH")]
    pub include: Vec<String>,
    /// Evaluate a flake output, `REF[#ATTRPATH]` as `nix eval` takes it (a
    /// path such as `/etc/nixos` or `.`, or a flake URL), instead of a
    /// FILE or an expression.
    #[arg(long, value_name = "REF[#ATTRPATH]")]
    pub flake: Option<String>,
}

impl SourceArgs {
    /// The invocation, with the command's positional FILE and `--impure`.
    pub fn invocation(
        &self,
        file: Option<PathBuf>,
        impure: bool,
    ) -> Result<Invocation, InvocationError> {
        InvocationArgs {
            file,
            exprs: self.expr.clone(),
            flake: self.flake.clone(),
            args: pairs(&self.arg),
            argstrs: pairs(&self.argstr),
            attr: self.attr.clone(),
            include: self.include.clone(),
            impure,
        }
        .check()
    }
}

/// Arguments of `attrfs eval` (implemented in [`eval_cmd`]). Like
/// nix-instantiate, a flag given twice is the same as once.
#[derive(Args, Debug, Clone)]
#[command(args_override_self = true)]
pub struct EvalArgs {
    /// The Nix file to evaluate (default `./default.nix`; a directory means
    /// its `default.nix`).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// What to evaluate (shared with `attrfs mount`).
    #[command(flatten)]
    pub source: SourceArgs,
    /// Evaluate the result deeply.
    #[arg(long)]
    pub strict: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print a string result raw, without quotes or escapes.
    #[arg(long)]
    pub raw: bool,
    /// Print the result as XML (the `builtins.toXML` format).
    #[arg(long)]
    pub xml: bool,
    /// Only parse, and print the syntax tree.
    #[arg(long)]
    pub parse: bool,
    /// Print an error's whole trace (without it: the 10 outermost frames).
    #[arg(long, overrides_with = "no_show_trace")]
    pub show_trace: bool,
    /// Print the short trace (the default).
    #[arg(long, overrides_with = "show_trace")]
    pub no_show_trace: bool,
    /// Set a Nix setting, as nix-instantiate does: show-trace, pure-eval,
    /// max-call-depth, lint-*-literals, (extra-)experimental-features.
    /// Unknown settings are an error.
    #[arg(long = "option", num_args = 2, value_names = ["NAME", "VALUE"])]
    pub option: Vec<String>,
    /// Pure evaluation: no NIX_PATH or `<...>` lookups, no getEnv,
    /// currentTime or currentSystem, no files outside /nix/store.
    #[arg(long, overrides_with = "impure")]
    pub pure_eval: bool,
    /// Impure evaluation: the default for a file or an expression; with
    /// --flake, lifts the pure evaluation flakes get.
    #[arg(long, overrides_with = "pure_eval")]
    pub impure: bool,
    /// Enable experimental features (space-separated), e.g.
    /// `parse-toml-timestamps` for dates and times in `fromTOML`.
    #[arg(long, value_name = "FEATURES")]
    pub extra_experimental_features: Vec<String>,
    /// `/abs` and `~/home` path literals: ignore, warn or fatal.
    #[arg(long, value_name = "LEVEL")]
    pub lint_absolute_path_literals: Option<String>,
    /// `a/b` path literals without `./`: ignore, warn or fatal.
    #[arg(long, value_name = "LEVEL")]
    pub lint_short_path_literals: Option<String>,
    /// `http://...` URL literals: ignore, warn or fatal.
    #[arg(long, value_name = "LEVEL")]
    pub lint_url_literals: Option<String>,
    /// Stop with a stack overflow error past this nesting depth.
    #[arg(long, value_name = "N")]
    pub max_call_depth: Option<String>,
    /// Keep running and print the value again whenever a file it was
    /// evaluated from changes (a live `nix-instantiate --eval`).
    #[arg(long)]
    pub watch: bool,
    /// Accepted for nix-instantiate's habits: `attrfs eval` always
    /// evaluates.
    #[arg(long, hide = true)]
    pub eval: bool,
    /// Parse and compile every file afresh instead of loading unchanged
    /// ones from the compiled-file cache (also ATTRFS_NO_COMPILE_CACHE=1).
    #[arg(long)]
    pub no_compile_cache: bool,
}

impl EvalArgs {
    /// The settings given, as (NAME, VALUE) in the order they apply:
    /// `--option` pairs first, then the flag spellings, which win.
    pub fn settings(&self) -> Vec<(String, String)> {
        let mut out = pairs(&self.option);
        let mut set = |name: &str, value: &str| out.push((name.to_string(), value.to_string()));
        if self.show_trace {
            set("show-trace", "true");
        }
        if self.no_show_trace {
            set("show-trace", "false");
        }
        if self.pure_eval {
            set("pure-eval", "true");
        }
        if self.impure {
            set("pure-eval", "false");
        }
        for features in &self.extra_experimental_features {
            set("extra-experimental-features", features);
        }
        for (name, level) in [
            (
                "lint-absolute-path-literals",
                &self.lint_absolute_path_literals,
            ),
            ("lint-short-path-literals", &self.lint_short_path_literals),
            ("lint-url-literals", &self.lint_url_literals),
            ("max-call-depth", &self.max_call_depth),
        ] {
            if let Some(value) = level {
                set(name, value);
            }
        }
        out
    }

    /// What to evaluate, or why the arguments do not say.
    pub fn invocation(&self) -> Result<Invocation, InvocationError> {
        self.source.invocation(self.file.clone(), self.impure)
    }
}

/// Arguments of `attrfs umount`.
#[derive(Args, Debug, Clone)]
struct UmountArgs {
    /// The mountpoint to unmount.
    mountpoint: PathBuf,
}

/// Arguments of the hidden `__reap-mount` helper.
#[derive(Args, Debug, Clone)]
struct ReapArgs {
    /// The mountpoint to watch.
    mountpoint: PathBuf,
    /// The `major:minor` device of the mount, as in /proc/self/mountinfo.
    dev: String,
}

/// Regroups the flattened values of a two-valued repeatable option.
fn pairs(flat: &[String]) -> Vec<(String, String)> {
    flat.chunks_exact(2)
        .map(|pair| (pair[0].clone(), pair[1].clone()))
        .collect()
}

fn init_logging() {
    use tracing_subscriber::EnvFilter;
    // `RUST_LOG` decides; by default attrfs says what it does (mounts,
    // timeouts, failing values) and dependencies only warn.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,attrfs=info,attrfs_vfs=info,attrfs_worker=info"));
    // A second initialisation can only happen in tests; ignoring it is fine.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    disable_transparent_huge_pages();
    // `attrfs SOURCE MOUNTPOINT -o OPTS`, as mount.fuse3 runs it for
    // /etc/fstab and `mount -t fuse.attrfs`.
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let mut subcommands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    subcommands.push("help".into());
    if mount_helper::is_helper_invocation(&args, &subcommands) {
        return mount_helper::run(&args);
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Mount(args) => {
            init_logging();
            mount::run(&args)
        }
        Command::Eval(args) => {
            let code = eval_cmd::run(&args);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Command::Umount(args) => mount::umount_command(&args.mountpoint),
        Command::Completions { shell } => manual::completions(Cli::command(), shell),
        Command::Man { subcommand } => manual::man(Cli::command(), subcommand.as_deref()),
        Command::ReapMount(args) => mount::reap_command(&args.mountpoint, &args.dev),
        Command::Worker => {
            init_logging();
            ExitCode::from(attrfs_worker::serve_stdio())
        }
    }
}

/// A size with an optional `K`, `M` or `G` suffix (powers of 1024).
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&text[..i], c.to_ascii_uppercase()),
        _ => (text, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return Err(format!("{text}: the unit must be K, M or G")),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text} is not a size (such as 512M or 2G)"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use attrfs_eval::{AutoArg, Source};

    fn mount_args(args: &[&str]) -> MountArgs {
        let cli = Cli::try_parse_from(["attrfs", "mount"].iter().chain(args)).unwrap();
        let Command::Mount(args) = cli.command else {
            panic!("not a mount");
        };
        args
    }

    fn eval_args(args: &[&str]) -> EvalArgs {
        let cli = Cli::try_parse_from(["attrfs", "eval"].iter().chain(args)).unwrap();
        let Command::Eval(args) = cli.command else {
            panic!("not eval");
        };
        args
    }

    #[test]
    fn mount_positionals() {
        let args = mount_args(&["f.nix", "/mnt"]);
        assert_eq!(args.file().map(|p| p.to_str()), Some(Some("f.nix")));
        assert_eq!(args.mountpoint().to_str(), Some("/mnt"));
        let args = mount_args(&["-E", "{}", "/mnt", "-o", "allow_other,noatime"]);
        assert_eq!(args.file(), None);
        assert_eq!(args.mountpoint().to_str(), Some("/mnt"));
        assert!(Cli::try_parse_from(["attrfs", "mount"]).is_err());
        assert!(Cli::try_parse_from(["attrfs", "mount", "a", "b", "c"]).is_err());
    }

    /// `attrfs eval ARGS` and `attrfs mount ARGS MOUNTPOINT` make the same
    /// invocation of the same arguments, or refuse them alike.
    #[test]
    fn eval_and_mount_take_the_same_invocations() {
        let invocation = |source: Source| Invocation {
            source,
            ..Invocation::default()
        };
        let cases: Vec<(&[&str], Result<Invocation, InvocationError>)> = vec![
            (&[], Ok(Invocation::default())),
            (&["f.nix"], Ok(Invocation::file("f.nix"))),
            (&["-E", "1 + 2"], Ok(Invocation::expr("1 + 2"))),
            (&["--expr", "{ }"], Ok(Invocation::expr("{ }"))),
            (
                &["--flake", ".#hello"],
                Ok(invocation(Source::Flake(".#hello".into()))),
            ),
            (
                &["--flake", ".", "--impure"],
                Ok(Invocation {
                    impure: true,
                    ..invocation(Source::Flake(".".into()))
                }),
            ),
            (
                &[
                    "-E",
                    "x",
                    "-A",
                    "a.b",
                    "-A",
                    "c",
                    "-I",
                    "nixpkgs=/x",
                    "--arg",
                    "n",
                    "1",
                    "--argstr",
                    "s",
                    "t",
                    "--arg",
                    "m",
                    "{}",
                ],
                Ok(Invocation {
                    args: vec![
                        ("n".into(), AutoArg::Expr("1".into())),
                        ("m".into(), AutoArg::Expr("{}".into())),
                        ("s".into(), AutoArg::Str("t".into())),
                    ],
                    attr: vec!["a.b".into(), "c".into()],
                    include: vec!["nixpkgs=/x".into()],
                    ..Invocation::expr("x")
                }),
            ),
            (&["f.nix", "-E", "1"], Err(InvocationError::FileAndExpr)),
            (&["-E", "1", "-E", "2"], Err(InvocationError::SeveralExprs)),
            (
                &["--flake", ".", "-E", "1"],
                Err(InvocationError::FlakeAndSource),
            ),
            (
                &["--flake", ".", "f.nix"],
                Err(InvocationError::FlakeAndSource),
            ),
        ];
        for (args, expected) in cases {
            assert_eq!(eval_args(args).invocation(), expected, "eval {args:?}");
            let mut with_mountpoint = args.to_vec();
            with_mountpoint.push("/mnt");
            let mount = mount_args(&with_mountpoint);
            assert_eq!(mount.invocation(), expected, "mount {args:?}");
            assert_eq!(mount.mountpoint().to_str(), Some("/mnt"));
        }
    }

    /// An fstab line's source and `-o` options become `attrfs mount` flags,
    /// and so the invocation `attrfs eval` makes of the same flags.
    #[test]
    fn fstab_options_make_the_same_invocation() {
        let fstab: Vec<std::ffi::OsString> = [
            "attrfs#/etc/nixos/configuration.nix",
            "/mnt/cfg",
            "-o",
            "ro,attr=config,argstr.system=x86_64-linux,arg.n=1,include=nixpkgs=/src,noatime",
        ]
        .iter()
        .map(Into::into)
        .collect();
        let translated = mount_helper::translate(&fstab, std::path::Path::new("/")).unwrap();
        let args: Vec<&str> = translated.args.iter().filter_map(|a| a.to_str()).collect();
        let from_fstab = mount_args(&args).invocation().unwrap();
        let eval = eval_args(&[
            "/etc/nixos/configuration.nix",
            "-A",
            "config",
            "--argstr",
            "system",
            "x86_64-linux",
            "--arg",
            "n",
            "1",
            "-I",
            "nixpkgs=/src",
        ]);
        assert_eq!(from_fstab, eval.invocation().unwrap());
    }

    #[test]
    fn eval_arguments() {
        let args = eval_args(&["-E", "1 + 2", "--strict", "--json", "--strict"]);
        assert!(args.strict && args.json && !args.raw && !args.parse);
    }

    #[test]
    fn sizes_take_a_binary_suffix() {
        assert_eq!(super::parse_size("2G"), Ok(2 << 30));
        assert_eq!(super::parse_size("512m"), Ok(512 << 20));
        assert_eq!(super::parse_size("4096"), Ok(4096));
        assert!(super::parse_size("2T").is_err());
        assert!(super::parse_size("lots").is_err());
        assert!(super::parse_size("99999999999G").is_err());
    }
}
