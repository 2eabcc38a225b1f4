//! `credguard man`: manual pages (roff), generated from the same clap command tree the
//! binary parses with.
//!
//! Without `--out-dir`, one page, `credguard(1)`, on standard output: the top command's
//! page followed by a section per subcommand (every level), each with its synopsis,
//! description, options and examples (the global options are described once, on the top
//! page). With `--out-dir DIR`, one page per command
//! (`credguard.1`, `credguard-instances.1`, `credguard-instances-add.1`, ...), each written
//! atomically (a temporary file in DIR renamed over the page) and mode 0644: man pages are
//! documentation every user of the host reads, and hold nothing secret.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use clap_mangen::Man;
use credguard::credspec::syntax::shown_path;

use crate::exit::{CliError, Exit};

pub const EXAMPLES: &str = "\
Examples:
  # read the whole manual now
  credguard man | man -l -
  # one page per command; then: man credguard-instances-add
  credguard man --out-dir /usr/local/share/man/man1";

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write one page per command into this directory (created if missing) instead of the
    /// whole manual on standard output. Pages are written atomically, mode 0644.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// Every command of the tree, depth first, the top one first; clap's `help` subcommand is
/// left out (its page would only say what `--help` does).
fn commands(cmd: &clap::Command) -> Vec<clap::Command> {
    let mut all = vec![cmd.clone()];
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        all.extend(commands(sub));
    }
    all
}

fn built(cmd: clap::Command) -> clap::Command {
    let mut cmd = cmd.disable_help_subcommand(true);
    // Sets each subcommand's display name (`credguard-instances-add`) and usage name
    // (`credguard instances add`), which the pages use.
    cmd.build();
    cmd
}

pub fn run(cmd: clap::Command, args: &ManArgs) -> Result<Exit, CliError> {
    let cmd = built(cmd);
    match &args.out_dir {
        None => {
            let page = whole_manual(&cmd).map_err(|e| CliError::new(Exit::State, e))?;
            crate::output::write_bytes(&page);
        }
        Some(dir) => {
            for path in write_pages(&cmd, dir)? {
                outln!("wrote {}", shown_path(&path.display().to_string()));
            }
        }
    }
    Ok(Exit::Ok)
}

/// The top command's page, then a section per subcommand, in which the subcommand's own
/// sections are subsections. The global options are described once, on the top page.
fn whole_manual(cmd: &clap::Command) -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    Man::new(cmd.clone()).render(&mut page)?;
    for sub in commands(cmd).into_iter().skip(1) {
        let title = sub.get_bin_name().unwrap_or(sub.get_name()).to_uppercase();
        let sub = sub.mut_args(|a| if a.is_global_set() { a.hide(true) } else { a });
        let man = Man::new(sub.clone());
        let mut part = Vec::new();
        man.render_synopsis_section(&mut part)?;
        man.render_description_section(&mut part)?;
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(&mut part)?;
        }
        if sub.get_after_help().is_some() || sub.get_after_long_help().is_some() {
            man.render_extra_section(&mut part)?;
        }
        writeln!(page, ".SH \"{title}\"")?;
        for line in String::from_utf8_lossy(&part).lines() {
            match line.strip_prefix(".SH ") {
                Some(heading) => writeln!(page, ".SS {heading}")?,
                None => writeln!(page, "{line}")?,
            }
        }
    }
    Ok(examples_heading(&page))
}

/// clap_mangen puts the help's closing text under `EXTRA`; here it is the examples, so the
/// section is called `EXAMPLES` and the text's own `Examples:` line is dropped.
fn examples_heading(page: &[u8]) -> Vec<u8> {
    let mut out = String::new();
    let mut heading_just_written = false;
    for line in String::from_utf8_lossy(page).lines() {
        if heading_just_written && line == "Examples:" {
            heading_just_written = false;
            continue;
        }
        heading_just_written = false;
        match line {
            ".SH EXTRA" | ".SS EXTRA" => {
                out.push_str(&line.replace("EXTRA", "EXAMPLES"));
                heading_just_written = true;
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// Writes one page per command into `dir`, atomically, mode 0644; returns their paths.
fn write_pages(cmd: &clap::Command, dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let shown = || shown_path(&dir.display().to_string());
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::new(
            Exit::State,
            format!("cannot create the man page directory `{}`: {e}", shown()),
        )
    })?;
    let mut written = Vec::new();
    for sub in commands(cmd) {
        let man = Man::new(sub);
        let path = dir.join(man.get_filename());
        let mut page = Vec::new();
        man.render(&mut page)
            .and_then(|()| write_atomic(dir, &path, &examples_heading(&page)))
            .map_err(|e| {
                CliError::new(
                    Exit::State,
                    format!(
                        "cannot write the man page `{}`: {e}",
                        shown_path(&path.display().to_string())
                    ),
                )
            })?;
        written.push(path);
    }
    Ok(written)
}

/// A temporary file beside `path`, filled, flushed to disk, made 0644 and renamed over
/// `path`: a reader sees the old page or the new one, never half of one.
fn write_atomic(dir: &Path, path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".credguard-man-")
        .tempfile_in(dir)?;
    tmp.write_all(content)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
