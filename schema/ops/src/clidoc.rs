//! What the programs say about their own command lines, made from their
//! clap definitions so it cannot drift from them: shell completions, man
//! pages (`hostd completions bash`, `hostd man`, the same for `ssh-gateway`
//! and `console`), and the check the tests run that every flag says what it
//! does and what it defaults to.
//!
//! The generated files are kept in each program's `dist/` (`completions/`,
//! `man/`); [`dist_files`] is what they must hold, and each program's
//! `tests/dist.rs` compares the two.

use std::io;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

/// A shell that `completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

impl Shell {
    pub const ALL: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

    /// The file the shell loads for `bin`: `hostd.bash`, `_hostd`, `hostd.fish`.
    pub fn file_name(self, bin: &str) -> String {
        match self {
            Shell::Bash => format!("{bin}.bash"),
            Shell::Zsh => format!("_{bin}"),
            Shell::Fish => format!("{bin}.fish"),
        }
    }

    fn generator(self) -> clap_complete::Shell {
        match self {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        }
    }
}

/// `completions [SHELL] [--out DIR]`.
#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for: bash, zsh or fish
    /// (every one of them with --out).
    #[arg(value_name = "SHELL", required_unless_present = "out")]
    pub shell: Option<Shell>,
    /// Write the scripts into DIR (`NAME.bash`, `_NAME`, `NAME.fish`)
    /// instead of printing one.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `man [--out DIR]`.
#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write one page per command into DIR (`NAME.1`, `NAME-SUBCOMMAND.1`,
    /// …) instead of printing the program's own page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// The completion script of `cmd` for `shell`.
pub fn completion(cmd: &clap::Command, shell: Shell) -> Vec<u8> {
    let mut cmd = cmd.clone();
    let bin = cmd.get_name().to_string();
    let mut out = Vec::new();
    clap_complete::generate(shell.generator(), &mut cmd, bin, &mut out);
    out
}

/// The man pages of `cmd`: one for the program and one for each visible
/// subcommand at any depth (`ssh-gateway-keys-add.1`), as (file name, roff).
pub fn man_pages(cmd: &clap::Command) -> io::Result<Vec<(String, Vec<u8>)>> {
    fn walk(
        cmd: &clap::Command,
        source: &str,
        pages: &mut Vec<(String, Vec<u8>)>,
    ) -> io::Result<()> {
        let man = clap_mangen::Man::new(cmd.clone())
            .source(source)
            .manual("cranefleet");
        let mut roff = Vec::new();
        man.render(&mut roff)?;
        pages.push((man.get_filename(), roff));
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, source, pages)?;
        }
        Ok(())
    }
    // Built once, so that every page shows the global flags and is named
    // after its full path (`hostd-serve`).
    let mut cmd = cmd.clone().disable_help_subcommand(true);
    cmd.build();
    // Every page is of the program's version (`hostd 0.1.0`).
    let source = format!(
        "{} {}",
        cmd.get_name(),
        cmd.get_version().unwrap_or_default()
    );
    let mut pages = Vec::new();
    walk(&cmd, source.trim_end(), &mut pages)?;
    Ok(pages)
}

/// Every file a program's `dist/` keeps generated from `cmd`, as (path
/// under `dist/`, contents): `completions/…` and `man/…`.
pub fn dist_files(cmd: &clap::Command) -> io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let bin = cmd.get_name().to_string();
    let mut files: Vec<(PathBuf, Vec<u8>)> = Shell::ALL
        .iter()
        .map(|&s| {
            (
                Path::new("completions").join(s.file_name(&bin)),
                completion(cmd, s),
            )
        })
        .collect();
    for (name, roff) in man_pages(cmd)? {
        files.push((Path::new("man").join(name), roff));
    }
    Ok(files)
}

/// Compares a program's `dist/` (the directory `dist`, of the package
/// `package` whose binary `cmd` parses for) with what [`dist_files`] makes
/// now. `Err` names every file that differs, is missing or is left over,
/// and the command that writes them again.
pub fn check_dist(cmd: &clap::Command, dist: &Path, package: &str) -> Result<(), String> {
    let want = dist_files(cmd).map_err(|e| format!("cannot generate: {e}"))?;
    let mut wrong = Vec::new();
    for (rel, bytes) in &want {
        match std::fs::read(dist.join(rel)) {
            Ok(have) if have == *bytes => {}
            Ok(_) => wrong.push(format!("{} differs", rel.display())),
            Err(e) => wrong.push(format!("{} cannot be read: {e}", rel.display())),
        }
    }
    for sub in ["completions", "man"] {
        let Ok(entries) = std::fs::read_dir(dist.join(sub)) else {
            continue;
        };
        for e in entries.flatten() {
            let rel = Path::new(sub).join(e.file_name());
            if !want.iter().any(|(w, _)| *w == rel) {
                wrong.push(format!("{} is not generated any more", rel.display()));
            }
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    let bin = cmd.get_name();
    Err(format!(
        "{package}/dist is stale (the clap definitions changed):\n  {}\nregenerate from the workspace root:\n  \
         rm -rf {package}/dist/completions {package}/dist/man && \
         cargo run -q -p {package} --bin {bin} -- completions --out {package}/dist/completions && \
         cargo run -q -p {package} --bin {bin} -- man --out {package}/dist/man",
        wrong.join("\n  ")
    ))
}

fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    std::fs::write(path, bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot write {}: {e}", path.display())))
}

fn create_dir(dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display())))
}

/// Runs `completions`: prints one script, or writes them into `--out`
/// (only SHELL's when one is named). Returns the files written.
pub fn run_completions(cmd: &clap::Command, args: &CompletionsArgs) -> io::Result<Vec<PathBuf>> {
    match (&args.out, args.shell) {
        (None, Some(shell)) => {
            io::Write::write_all(&mut io::stdout().lock(), &completion(cmd, shell))?;
            Ok(Vec::new())
        }
        (None, None) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "which shell? `completions bash|zsh|fish`, or `completions --out DIR` for all",
        )),
        (Some(dir), shell) => {
            create_dir(dir)?;
            let shells = match shell {
                Some(s) => vec![s],
                None => Shell::ALL.to_vec(),
            };
            let bin = cmd.get_name().to_string();
            shells
                .into_iter()
                .map(|s| {
                    let path = dir.join(s.file_name(&bin));
                    write_file(&path, &completion(cmd, s)).map(|_| path)
                })
                .collect()
        }
    }
}

/// Runs `man`: prints the program's page, or writes every page into
/// `--out`. Returns the files written.
pub fn run_man(cmd: &clap::Command, args: &ManArgs) -> io::Result<Vec<PathBuf>> {
    let pages = man_pages(cmd)?;
    match &args.out {
        None => {
            let (_, roff) = pages
                .first()
                .ok_or_else(|| io::Error::other("no man page was made"))?;
            io::Write::write_all(&mut io::stdout().lock(), roff)?;
            Ok(Vec::new())
        }
        Some(dir) => {
            create_dir(dir)?;
            pages
                .into_iter()
                .map(|(name, roff)| {
                    let path = dir.join(name);
                    write_file(&path, &roff).map(|_| path)
                })
                .collect()
        }
    }
}

/// What is wrong with the help of `cmd` and every subcommand under it, one
/// line per argument: an argument without help text; a default that
/// `--help` does not show (`[default: …]`); a default computed at run time
/// that the help text mentions other than as `(default …)`. Empty when
/// all is well.
pub fn help_problems(cmd: &clap::Command) -> Vec<String> {
    let mut cmd = cmd.clone();
    cmd.build();
    let mut problems = Vec::new();
    walk_help(&cmd, cmd.get_name(), &mut problems);
    problems
}

fn walk_help(cmd: &clap::Command, path: &str, problems: &mut Vec<String>) {
    // Whitespace collapsed: a long line of help may wrap inside `[default: …]`.
    let help = squash(&cmd.clone().render_long_help().to_string());
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if id == "help" || id == "version" {
            continue;
        }
        let name = match arg.get_long() {
            Some(l) => format!("--{l}"),
            None => arg
                .get_value_names()
                .and_then(|v| v.first())
                .map(|v| v.to_string())
                .unwrap_or_else(|| id.to_uppercase()),
        };
        let text = arg
            .get_long_help()
            .or(arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        if text.trim().is_empty() {
            problems.push(format!("{path} {name}: no help text (add a doc comment)"));
            continue;
        }
        let takes_values = arg.get_num_args().is_some_and(|n| n.takes_values());
        let defaults = arg.get_default_values();
        if takes_values && !defaults.is_empty() {
            // As clap writes it: values with spaces quoted, joined by one.
            let shown = defaults
                .iter()
                .map(|d| {
                    let d = d.to_string_lossy();
                    if d.contains(char::is_whitespace) {
                        format!("{d:?}")
                    } else {
                        d.into_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ");
            let want = squash(&format!("[default: {shown}]"));
            if arg.is_hide_default_value_set() || !help.contains(&want) {
                problems.push(format!(
                    "{path} {name}: its default is not shown in --help (want {want})"
                ));
            }
        } else if mentions_default_loosely(&text) {
            problems.push(format!(
                "{path} {name}: a default computed at run time is written `(default …)` in its help, got {text:?}"
            ));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        walk_help(sub, &format!("{path} {}", sub.get_name()), problems);
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `text` speaks of a default other than as `(default …)` (words
/// in backticks, such as the bucket `default`, are names, not defaults;
/// `(default: …)` is as good).
fn mentions_default_loosely(text: &str) -> bool {
    let mut outside = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 0 {
            outside.push_str(part);
            outside.push(' ');
        }
    }
    let lower = outside.to_lowercase();
    let mentions = lower.match_indices("default").count();
    let proper =
        lower.match_indices("(default ").count() + lower.match_indices("(default:").count();
    mentions > proper
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    /// A program with one of each kind of flag.
    #[derive(Debug, Parser)]
    #[command(name = "demo", version)]
    struct Good {
        /// Where state goes (default ~/.local/share/demo).
        #[arg(long, global = true)]
        data: Option<PathBuf>,
        #[command(subcommand)]
        cmd: GoodCmd,
    }

    #[derive(Debug, Subcommand)]
    enum GoodCmd {
        /// Serve.
        Serve {
            /// Address to listen on.
            #[arg(long, default_value = "127.0.0.1:1")]
            listen: String,
            /// Be quick.
            #[arg(long)]
            quick: bool,
            /// The bucket (default `default`).
            #[arg(long)]
            bucket: Option<String>,
        },
        /// Hidden, yet held to the same rule.
        #[command(hide = true)]
        Completions(CompletionsArgs),
    }

    #[derive(Debug, Parser)]
    #[command(name = "bad")]
    struct Bad {
        #[arg(long)]
        undocumented: Option<String>,
        /// Documented, default hidden.
        #[arg(long, default_value_t = 3, hide_default_value = true)]
        hidden_default: u32,
        /// Default said loosely: default is the hostname.
        #[arg(long)]
        name: Option<String>,
        /// A positional without help follows.
        #[arg(long)]
        fine: bool,
        app: Option<String>,
    }

    #[test]
    fn every_flag_needs_help_and_shows_its_default() {
        assert_eq!(help_problems(&Good::command()), Vec::<String>::new());
        let p = help_problems(&Bad::command());
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(p[0].contains("--undocumented: no help text"), "{p:#?}");
        assert!(p[1].contains("--hidden-default: its default is not shown"));
        assert!(p[2].contains("--name: a default computed at run time"));
        assert!(p[3].contains("APP: no help text"), "{p:#?}");
    }

    #[test]
    fn pages_and_scripts_cover_every_visible_command() {
        let files = dist_files(&Good::command()).unwrap();
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "completions/demo.bash",
                "completions/_demo",
                "completions/demo.fish",
                "man/demo.1",
                "man/demo-serve.1",
            ]
        );
        let serve = String::from_utf8(files[4].1.clone()).unwrap();
        assert!(serve.contains("listen"), "{serve}");
        // The global flag is on the subcommand's page too.
        assert!(serve.contains("data"), "{serve}");
        let bash = String::from_utf8(files[0].1.clone()).unwrap();
        assert!(
            bash.contains("--listen") && bash.contains("--bucket"),
            "{bash}"
        );
    }

    #[test]
    fn a_stale_dist_names_its_files_and_how_to_regenerate_them() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = Good::command();
        for (rel, bytes) in dist_files(&cmd).unwrap() {
            let path = dir.path().join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        assert_eq!(check_dist(&cmd, dir.path(), "demo"), Ok(()));
        std::fs::write(dir.path().join("man/demo-serve.1"), "old").unwrap();
        std::fs::write(dir.path().join("man/demo-gone.1"), "old").unwrap();
        std::fs::remove_file(dir.path().join("completions/_demo")).unwrap();
        let e = check_dist(&cmd, dir.path(), "demo").unwrap_err();
        assert!(e.contains("man/demo-serve.1 differs"), "{e}");
        assert!(
            e.contains("man/demo-gone.1 is not generated any more"),
            "{e}"
        );
        assert!(e.contains("completions/_demo cannot be read"), "{e}");
        assert!(
            e.contains("cargo run -q -p demo --bin demo -- man --out demo/dist/man"),
            "{e}"
        );
    }
}
